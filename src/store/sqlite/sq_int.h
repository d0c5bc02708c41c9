/*
 * sq_int.h - what the SQLite backend's files share: the statement list, the
 * connection and the backend's store, and the helpers that bind and step.
 * Not for use outside src/store/sqlite.
 */
#ifndef SQ_INT_H
#define SQ_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store_casc.h"
#include "store/sqlite/sq_contact.h"
#include "store/sqlite/sq_optout.h"
#include "store/sqlite/sq_money.h"

#define BUSY_MS 1000              /* longest wait for a lock held by another process */
#define SQ_CACHE_KIB 65536        /* a connection's page cache (the writer's during
                                     an import: sq_contact.h) */

/* ---- statements -------------------------------------------------------- */

/* An attempt's columns as casc_att_cols() reads them. */
#define ATT_COLS "message_id,channel,status,step,sent_at,delivered_at,read_at,"  \
                 "segments,parts_sent,parts_delivered,scope,tries"
/* An account's columns as account_cols() (sq_account.c) reads them. */
#define ACC_COLS "id,public_id,name,sms_route,callback_secret,created_at,"      \
                 "suspended,senders,countries,roaming_ads"
/* A message's columns as read_msg_row() (sq_read.c) reads them. */
#define MSG_COLS "id,public_id,to_number,sender,class,status,encoding,segments,"  \
                 "channel,idem_key,callback_url,created_at,expires_at,"           \
                 "updated_at,cost,sms_only_cost,delivered_twice,done,campaign"

/* A channel attempt's columns as chan_due_row() (sq_chan.c) reads them. */
#define CHAN_COLS STORE_CHAN_COLS

/* An outbox row's columns as outbox_rows() (sq_outbox.c) reads them. */
#define OUTBOX_COLS "id,account_id,url,payload,tries,public_id,status,channel,"  \
                    "to_number,at,cost,error"

/* A reply's columns as sq_reply_list() reads them. */
#define REPLY_COLS "i.id,i.channel,i.from_number,i.to_addr,i.route,i.body,i.at,"   \
                   "m.public_id,i.user_id,i.attributed_by"                       \
                   " FROM inbound i LEFT JOIN messages m"                        \
                   " ON m.id=i.message_id"

/* Every statement, by number; each connection prepares what it uses lazily. */
/* templates (sq_template.c) */
#define STMT_LIST_TEMPLATE(XX)                                                 \
  XX(TPL_PUT, "INSERT INTO templates(account_id,name,body,created_at,"         \
              "updated_at) VALUES(?,?,?,?,?) ON CONFLICT(account_id,name)"     \
              " DO UPDATE SET body=excluded.body,"                             \
              " updated_at=excluded.updated_at")                               \
  XX(TPL_DEL, "DELETE FROM templates WHERE account_id=? AND name=?")          \
  XX(TPL_ALL, "SELECT account_id,name,body,created_at,updated_at"             \
              " FROM templates ORDER BY account_id,name")

#define STMT_LIST(XX)                                                          \
  XX(BEGIN, "BEGIN IMMEDIATE")                                                 \
  XX(BEGIN_READ, "BEGIN")                                                      \
  XX(COMMIT, "COMMIT")                                                         \
  XX(ROLLBACK, "ROLLBACK")                                                     \
  XX(SAVEPOINT, "SAVEPOINT op")                                                \
  XX(RELEASE, "RELEASE op")                                                    \
  XX(ROLLBACK_TO, "ROLLBACK TO op")                                            \
  XX(CAMP_COUNT_ADD, "INSERT INTO campaign_counts VALUES(?,?,?,?,?,?,?,?,?,?)" \
                     " ON CONFLICT(account_id,campaign,variant,channel,status)"\
                     " DO UPDATE SET n=n+excluded.n,cost=cost+excluded.cost,"  \
                     "sms_only_cost=sms_only_cost+excluded.sms_only_cost,"     \
                     "twice=twice+excluded.twice,"                             \
                     "twice_msgs=twice_msgs+excluded.twice_msgs")              \
  XX(ACC_INSERT, "INSERT INTO accounts(public_id,name,sms_route,"              \
                 "callback_secret,created_at,senders,countries,roaming_ads)"   \
                 " VALUES(?,?,?,?,?,?,?,?)")                                     \
  XX(ACC_UPDATE, "UPDATE accounts SET name=?, sms_route=?, suspended=?,"       \
                 " senders=?, countries=?, roaming_ads=? WHERE id=?")                         \
  XX(ACC_GET_ID, "SELECT " ACC_COLS " FROM accounts WHERE id=?")              \
  XX(ACC_ALL, "SELECT " ACC_COLS " FROM accounts ORDER BY id")                \
  XX(KEY_INSERT, "INSERT INTO api_keys(account_id,key_hash,prefix,created_at)" \
                 " VALUES(?,?,?,?)")                                           \
  XX(KEY_ALL, "SELECT key_hash,account_id FROM api_keys"                       \
              " WHERE revoked_at IS NULL")                                     \
  XX(ROUTE_PUT, "INSERT INTO routes(name,config,updated_at) VALUES(?,?,?)"     \
                " ON CONFLICT(name) DO UPDATE SET config=excluded.config,"     \
                " updated_at=excluded.updated_at")                             \
  XX(ROUTE_DEL, "DELETE FROM routes WHERE name=?")                             \
  XX(ROUTE_ALL, "SELECT name,config FROM routes ORDER BY name")                \
  XX(IDEM_FIND, "SELECT id,public_id,status,encoding,segments,created_at,"     \
                "req_hash FROM messages WHERE account_id=? AND idem_key=?")    \
  XX(IDEM_CLEAR, "UPDATE messages SET idem_key=NULL WHERE id=?")               \
  XX(MSG_INSERT, "INSERT INTO messages(id,public_id,account_id,idem_key,"      \
                 "to_number,sender,body,class,encoding,segments,status,"       \
                 "channel,callback_url,created_at,expires_at,updated_at,"      \
                 "cascade,extra,route,sms_only_cost,step,attempt_id,due_at,"   \
                 "wait_until,done,cost,campaign,req_hash,decisions,variant)"    \
                 " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"  \
                 "?,?,?,?-1)")               \
  XX(MSG_MAX_ID, "SELECT COALESCE(MAX(id),0) FROM messages")                   \
  XX(ATT_INSERT, "INSERT INTO attempts(id,message_id,step,channel,route,"      \
                 "status,segments,address,scope,error,created_at,due_at)"      \
                 " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)")                           \
  XX(ATT_MAX_ID, "SELECT COALESCE(MAX(id),0) FROM attempts")                   \
  XX(DUE_SCAN, "SELECT m.id,a.id,m.account_id,m.to_number,m.sender,a.route,"  \
               "m.body,a.parts_sent,m.due_at,m.expires_at,m.class,m.created_at," \
               "m.status='scheduled' FROM messages m"                          \
               " JOIN attempts a ON a.id=m.attempt_id AND a.channel='sms'"     \
               " WHERE m.due_at IS NOT NULL AND m.id>? ORDER BY m.id LIMIT ?") \
  XX(DUE_GET, "SELECT m.id,a.id,m.account_id,m.to_number,m.sender,a.route,"   \
              "m.body,a.parts_sent,m.due_at,m.expires_at,m.class,m.created_at," \
              "m.status='scheduled' FROM messages m"                           \
              " JOIN attempts a ON a.id=m.attempt_id AND a.channel='sms'"      \
              " WHERE m.due_at IS NOT NULL AND m.id=?")                        \
  XX(PART_INSERT, "INSERT OR REPLACE INTO sms_parts(route,provider_id,"        \
                  "attempt_id,part,state) VALUES(?,?,?,?,'sent')")             \
  XX(ATT_SENT, "UPDATE attempts SET parts_sent=?, provider_id="                \
               "COALESCE(provider_id,?) WHERE id=?")                           \
  XX(ATT_ERROR, "UPDATE attempts SET error=? WHERE id=?")                      \
  XX(ATT_ROUTE, "UPDATE attempts SET route=?, price=? WHERE id=?")                      \
  XX(ATT_DELIVERED_PART, "UPDATE attempts SET parts_delivered="                \
                         "parts_delivered+1 WHERE id=?")                       \
  XX(MSG_SET_DUE, "UPDATE messages SET due_at=?, updated_at=? WHERE id=?")     \
  XX(MSG_DECIDE, "UPDATE messages SET decisions=json_insert(COALESCE("         \
                 "decisions,'[]'),'$[#]',json(?1)) WHERE id=?2")               \
  XX(PART_FIND, "SELECT p.attempt_id,p.state," ATT_COLS " FROM sms_parts p"   \
                " JOIN attempts a ON a.id=p.attempt_id"                        \
                " WHERE p.route=? AND p.provider_id=?")                        \
  XX(PART_SET, "UPDATE sms_parts SET state=? WHERE route=? AND provider_id=?") \
  XX(EARLY_PUT, "INSERT OR REPLACE INTO early_receipts(route,provider_id,"     \
                "other_id,state,error,at) VALUES(?,?,?,?,?,?)")                \
  XX(EARLY_GET, "SELECT other_id,state,error,at FROM early_receipts"          \
                " WHERE route=? AND provider_id=?")                            \
  XX(EARLY_DEL, "DELETE FROM early_receipts WHERE route=?1 AND"                \
                " provider_id IN (?2,?3)")                                     \
  XX(EARLY_EXPIRE, "DELETE FROM early_receipts WHERE (route,provider_id) IN"   \
                   " (SELECT route,provider_id FROM early_receipts WHERE at<?1" \
                   " ORDER BY at LIMIT ?2)")                                   \
  XX(EARLY_COUNT, "SELECT COUNT(*) FROM early_receipts WHERE route=?")         \
  XX(EARLY_ANY, "SELECT EXISTS(SELECT 1 FROM early_receipts),"                \
                " EXISTS(SELECT 1 FROM early_statuses)")                       \
  XX(EVENT_INSERT, "INSERT INTO events(message_id,attempt_id,status,at,detail)" \
                   " VALUES(?,?,?,?,?)")                                       \
  XX(OUTBOX_INSERT, "INSERT INTO outbox(account_id,message_id,url,payload,"    \
                    "due_at,at,public_id,status,channel,to_number,cost,error)" \
                    " VALUES(?1,?2,?3,'',?4,?4,?5,?6,?7,?8,?9,?10)")            \
  XX(OUTBOX_DUE, "SELECT " OUTBOX_COLS " FROM outbox"                          \
                 " WHERE due_at<=? ORDER BY due_at LIMIT ?")                   \
  XX(OUTBOX_DEL, "DELETE FROM outbox WHERE id=?")                              \
  XX(OUTBOX_RETRY, "UPDATE outbox SET tries=tries+1, due_at=?, last_error=?"   \
                   " WHERE id=?")                                              \
  XX(OUTBOX_NEXT, "SELECT MIN(due_at) FROM outbox")                            \
  /* per account, over outbox_account(account_id, due_at): */                   \
  XX(OUTBOX_NEXT_ACC, "SELECT account_id,due_at FROM outbox WHERE account_id>?" \
                      " ORDER BY account_id,due_at LIMIT 1")                   \
  XX(OUTBOX_DUE_ACC, "SELECT " OUTBOX_COLS " FROM outbox"                      \
                     " WHERE account_id=? AND due_at<=? ORDER BY due_at LIMIT ?") \
  XX(OUTBOX_DEFER, "UPDATE outbox SET due_at=? WHERE id=?")                    \
  XX(OUTBOX_COUNT_ACC, "SELECT COUNT(*) FROM outbox WHERE account_id=?")       \
  XX(OUTBOX_DROP_OLD, "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"  \
                      " WHERE account_id=? ORDER BY id LIMIT ?)")              \
  XX(MO_INSERT, "INSERT INTO inbound(route,from_number,to_addr,body,at,"      \
                "channel,account_id,message_id,user_id,attributed_by)"         \
                " VALUES(?,?,?,?,?,?,?,?,?,?)")                                \
  /* whose message last went to a phone (on a route; of an account; since a \
     time), among the phone's latest 100, over messages_to */                  \
  XX(MO_OWNER, "SELECT id,account_id,public_id FROM (SELECT id,account_id,"  \
               "public_id,route,created_at FROM messages WHERE to_number=?1"                   \
               " ORDER BY id DESC LIMIT 100)"                                  \
               " WHERE (?2 IS NULL OR route=?2) AND (?3=0 OR account_id=?3)"  \
               " AND created_at>=?4 LIMIT 1")                                  \
  XX(REPLY_LIST, "SELECT " REPLY_COLS " WHERE i.account_id=?1 AND i.id<?2"     \
                 " ORDER BY i.id DESC LIMIT ?3")                               \
  XX(REPLY_LIST_CHANNEL, "SELECT " REPLY_COLS " WHERE i.account_id=?1"         \
                         " AND i.channel=?4 AND i.id<?2"                       \
                         " ORDER BY i.id DESC LIMIT ?3")                       \
  XX(REPLY_LIST_FROM, "SELECT " REPLY_COLS " WHERE i.account_id=?1"            \
                      " AND i.from_number=?5 AND (?4 IS NULL OR i.channel=?4)" \
                      " AND i.id<?2 ORDER BY i.id DESC LIMIT ?3")              \
  XX(MSG_VIEW, "SELECT " MSG_COLS ",decisions FROM messages WHERE public_id=?"\
               " AND account_id=?")                                            \
  XX(ATT_VIEW, "SELECT channel,route,status,provider_id,segments,error,"       \
               "created_at,sent_at,delivered_at,read_at,step,cost,"               \
               "COALESCE(price,-1) FROM attempts" \
               " WHERE message_id=? ORDER BY id LIMIT 16")                     \
  /* bounded listings (store_msg_list): one index per filter, newest first */  \
  XX(MSG_SCAN_ACC, "SELECT " MSG_COLS ",body FROM messages"                    \
                   " INDEXED BY messages_account WHERE account_id=?1"          \
                   " AND id<?2 ORDER BY id DESC")                              \
  /* ?1 (the account) is checked on each row, so the rows examined count   \
     other accounts' too */                                                    \
  XX(MSG_SCAN_TO, "SELECT " MSG_COLS ",body,account_id FROM messages"          \
                  " INDEXED BY messages_to WHERE ?1 IS NOT NULL"               \
                  " AND to_number=?3 AND id<?2 ORDER BY id DESC")              \
  XX(MSG_SCAN_CAMPAIGN, "SELECT " MSG_COLS ",body FROM messages"               \
                        " INDEXED BY messages_campaign WHERE account_id=?1"    \
                        " AND campaign=?3 AND id<?2 ORDER BY id DESC")         \
  XX(MSG_ROW, "SELECT account_id,public_id,to_number,status,callback_url,step," \
              "attempt_id,done,cascade,extra IS NOT NULL,route,segments,"      \
              "channel,cost,delivered_twice,expires_at FROM messages"          \
              " WHERE id=?")                                                   \
  XX(MSG_EXTRA, "SELECT extra FROM messages WHERE id=?")                       \
  XX(MSG_ID_OF, "SELECT id FROM messages WHERE account_id=? AND public_id=?")  \
  XX(MSG_CANCEL, "UPDATE messages SET status='cancelled', done=1, due_at=NULL,"\
                 " wait_until=NULL, sms_only_cost=0, updated_at=? WHERE id=?") \
  XX(ATT_CANCEL, "UPDATE attempts SET status='cancelled', due_at=NULL"         \
                 " WHERE id=?")                                                \
  XX(MSG_STEP, "UPDATE messages SET step=?, attempt_id=?, due_at=?,"           \
               " wait_until=?, updated_at=?, channel=? WHERE id=?")            \
  XX(MSG_DONE, "UPDATE messages SET done=1, due_at=NULL, wait_until=NULL,"     \
               " updated_at=? WHERE id=?")                                     \
  XX(MSG_FIN, "UPDATE messages SET status=?1, channel=?2, cost=?3,"           \
              " delivered_twice=?4, updated_at=?5, done=(done OR ?6),"         \
              " due_at=CASE WHEN ?6 OR ?7 THEN NULL ELSE due_at END,"          \
              " wait_until=CASE WHEN ?6 THEN NULL WHEN ?8 THEN ?9"             \
              " ELSE wait_until END WHERE id=?10")                             \
  XX(MSG_CLEAR_DUE, "UPDATE messages SET due_at=NULL WHERE id=?")              \
  XX(MSG_WAIT, "UPDATE messages SET wait_until=? WHERE id=?")                  \
  XX(ATT_OF_MSG, "SELECT id,channel,status,sent_at,delivered_at,read_at,cost,"  \
                 "error FROM attempts WHERE message_id=? ORDER BY id")         \
  XX(ATT_COST, "SELECT cost FROM attempts WHERE id=?")                         \
  XX(ATT_ROW, "SELECT " ATT_COLS " FROM attempts"                              \
              " WHERE id=?")                                                   \
  XX(ESTAT_PUT, "INSERT OR REPLACE INTO early_statuses(channel,scope,"        \
                "provider_id,status,error,at) VALUES(?,?,?,?,?,?)")            \
  XX(ESTAT_GET, "SELECT status,error,at FROM early_statuses WHERE channel=?"   \
                " AND scope=? AND provider_id=? ORDER BY at")                  \
  XX(ESTAT_DEL, "DELETE FROM early_statuses WHERE channel=? AND scope=?"       \
                " AND provider_id=?")                                          \
  XX(ESTAT_EXPIRE, "DELETE FROM early_statuses WHERE (channel,scope,"         \
                   "provider_id,status) IN (SELECT channel,scope,provider_id,"  \
                   "status FROM early_statuses WHERE at<?1 ORDER BY at"         \
                   " LIMIT ?2)")                                               \
  XX(ESTAT_COUNT, "SELECT COUNT(*) FROM early_statuses WHERE scope=?")         \
  XX(ATT_SET, "UPDATE attempts SET status=?, sent_at=?, delivered_at=?,"        \
              " read_at=?, provider_id=COALESCE(provider_id,?),"               \
              " error=COALESCE(?,error), cost=cost+?, due_at=NULL,"            \
              " parts_sent=? WHERE id=?")                                      \
  XX(ATT_RETRY, "UPDATE attempts SET due_at=?1, tries=tries+?4, try_at=NULL,"  \
                " error=COALESCE(?2,error) WHERE id=?3")                       \
  XX(ATT_TRYING, "UPDATE attempts SET try_at=?1 WHERE id=?2"                    \
                 " AND due_at IS NOT NULL")                                    \
  XX(CHAN_SCOPE, "SELECT account_id FROM channel_settings WHERE channel=?1"     \
                 " AND account_id IN (?2,0) ORDER BY account_id DESC LIMIT 1")  \
  XX(PRICE_GET, "SELECT price FROM prices WHERE channel=?1"                     \
                " AND account_id IN (?2,0) ORDER BY account_id DESC LIMIT 1")   \
  /* a channel attempt as the claims and notes hand it out, with the time   \
     its recipient last wrote to the scope's WhatsApp number */               \
  XX(CHAN_DUE, "SELECT " CHAN_COLS " WHERE a.due_at IS NOT NULL"               \
               " AND a.due_at<=?1 AND (a.due_at,a.id)>(?2,?3)"                 \
               " ORDER BY a.due_at,a.id LIMIT ?4")                             \
  XX(CHAN_GET, "SELECT " CHAN_COLS " WHERE a.id=? AND a.due_at IS NOT NULL")   \
  /* The partial index named: left to the planner, the bound channel is      \
     weighed against attempts_address's channel list and the statement is    \
     compiled again at every bind (a provider status each time). */          \
  XX(ATT_BY_PROVIDER, "SELECT id," ATT_COLS " FROM attempts"                    \
                      " INDEXED BY attempts_provider WHERE channel=? AND"      \
                      " provider_id=? AND scope=? AND channel<>'sms'"          \
                      " AND provider_id IS NOT NULL")                          \
  XX(ATT_VK_READ, "SELECT id," ATT_COLS " FROM attempts WHERE channel='vk'"     \
                  " AND address=?1"                                            \
                  " AND scope=?2 AND provider_id IS NOT NULL AND read_at IS"   \
                  " NULL AND CAST(provider_id AS INTEGER)<=?3 LIMIT 64")       \
  XX(WAIT_DUE, "SELECT id,step,wait_until FROM messages WHERE wait_until IS"   \
               " NOT NULL AND wait_until<=? ORDER BY wait_until LIMIT ?")      \
  XX(WAIT_NEXT, "SELECT MIN(wait_until) FROM messages"                         \
                " WHERE wait_until IS NOT NULL")                               \
  XX(CHSET_PUT, "INSERT INTO channel_settings(account_id,channel,config,"      \
                "updated_at) VALUES(?,?,?,?) ON CONFLICT(account_id,channel)"  \
                " DO UPDATE SET config=excluded.config,"                       \
                " updated_at=excluded.updated_at")                             \
  XX(CHSET_DEL, "DELETE FROM channel_settings WHERE account_id=? AND channel=?") \
  XX(CHSET_ALL, "SELECT account_id,channel,config FROM channel_settings"       \
                " ORDER BY account_id,channel")                                \
  XX(PRICE_PUT, "INSERT INTO prices(account_id,channel,price) VALUES(?,?,?)"   \
                " ON CONFLICT(account_id,channel) DO UPDATE SET"               \
                " price=excluded.price")                                       \
  XX(PRICE_DEL, "DELETE FROM prices WHERE account_id=? AND channel=?")         \
  XX(PRICE_ALL, "SELECT account_id,channel,price FROM prices"                  \
                " ORDER BY account_id,channel")                                \
  XX(CASC_PUT, "INSERT INTO cascades(account_id,name,steps,updated_at)"        \
               " VALUES(?,?,?,?) ON CONFLICT(account_id,name) DO UPDATE SET"   \
               " steps=excluded.steps, updated_at=excluded.updated_at")        \
  XX(CASC_DEL, "DELETE FROM cascades WHERE account_id=? AND name=?")           \
  XX(CASC_EVERY, "SELECT account_id,name,steps FROM cascades"                 \
                 " ORDER BY account_id,name")                                  \
  XX(WA_IN_PUT, "INSERT INTO wa_windows(scope,phone,last_inbound)"             \
                " VALUES(?,?,?) ON CONFLICT(scope,phone) DO UPDATE SET"        \
                " last_inbound=excluded.last_inbound"                          \
                " WHERE excluded.last_inbound>wa_windows.last_inbound")        \
  XX(WA_IN_GET, "SELECT last_inbound FROM wa_windows WHERE scope=?"            \
                " AND phone=?")                                                \
  /* keys by prefix, suspended accounts, retention */                          \
  XX(KEY_LIST, "SELECT prefix,created_at,revoked_at FROM api_keys"             \
               " WHERE account_id=? ORDER BY id")                              \
  XX(KEY_FIND, "SELECT id,key_hash,account_id FROM api_keys WHERE prefix=?1"   \
               " AND revoked_at IS NULL AND (?2=0 OR account_id=?2) LIMIT 8")  \
  XX(KEY_REVOKE, "UPDATE api_keys SET revoked_at=? WHERE id=?")                \
  XX(ACC_SUSPENDED, "SELECT id FROM accounts WHERE suspended<>0")              \
  XX(RET_SCAN, "SELECT id,created_at,done,updated_at FROM messages"           \
               " WHERE id>? ORDER BY id LIMIT ?")                              \
  XX(RET_PARTS, "DELETE FROM sms_parts WHERE attempt_id IN"                    \
                " (SELECT id FROM attempts WHERE message_id=?)")               \
  XX(RET_ATTEMPTS, "DELETE FROM attempts WHERE message_id=?")                  \
  XX(RET_EVENTS, "DELETE FROM events WHERE message_id=?")                      \
  XX(RET_MSG, "DELETE FROM messages WHERE id=?")                              \
  STMT_LIST_TEMPLATE(XX)                                                       \
  /* contacts and imports (sq_contact.h) */                                    \
  STMT_LIST_CONTACT(XX)                                                        \
  STMT_LIST_OPTOUT(XX)                                                         \
  /* balances (sq_money.h) */                                                  \
  STMT_LIST_MONEY(XX)

enum stmt_id {
#define XX(name, sql) ST_##name,
  STMT_LIST(XX)
#undef XX
  ST__COUNT
};

extern const char *const stmt_sql[];

/* A connection with its prepared statements. */
#define SQ_SQL_CACHE 16   /* statements of plain SQL (sq_sql.c) kept prepared */
struct conn {
  sqlite3 *db;
  sqlite3_stmt *st[ST__COUNT];
  int err;              /* SQLite's code of the last failed statement (0: none) */
  sqlite3_stmt *sql[SQ_SQL_CACHE];   /* the last plain statements run, by their text */
  unsigned sql_next;    /* the slot the next one takes */
};

/* sq_counts.c: a campaign's figures noted as its rows change, written
   before each commit. Writer thread only. */
struct sq_counts {
  struct sq_count_key *keys;    /* the keys seen (kept across commits, up to a bound) */
  int nkeys, capkeys;
  struct sq_count_note *notes;  /* this transaction's changes, in order */
  int nnotes, capnotes;
  int mark;                     /* nnotes at the operation's savepoint */
  int failed;                   /* a change could not be read: no commit */
  int msg_col[8], rcpt_col[4];  /* the columns read, by number */
  int hooked;                   /* the hook is set (sq_counts_start) */
};

/* The SQLite backend's store: the neutral part first (the writer sees only
   that), then the connections and the writer's caches. */
struct sq_store {
  struct store base;
  struct conn w;                /* writer thread's connection */
  struct conn r;                /* loop thread's connection */
  int64_t next_msg_id, next_att_id; /* writer: the ids the next rows get */
  int early_any;                /* writer: early_receipts may have rows */
  int estat_any;                /* writer: early_statuses may have rows */
  /* writer: early rows held per scope ("s<account>" for statuses, "r<route>"
     for receipts), counted when first needed and forgotten whenever rows
     go otherwise (expiry, a rollback, a match) */
  int64_t early_cap;            /* rows one scope may hold */
  double early_next_expire;     /* monotonic ms of the next expiry run */
  struct early_count { char key[72]; int64_t n; } *ecount;
  int necount, capecount;
  uint64_t early_refused_w, early_expired_w;   /* writer's counters */
  char path[4096];              /* the database file (the pool's readers open it) */
  /* writer: prices and channel scopes read recently (cleared when either
     table is written); each status would otherwise read them again */
  struct store_memo {
    int64_t account_id;
    char channel[20];
    int64_t value;              /* price, or the scope (-1: not configured) */
    int used;
  } price_memo[32], scope_memo[32];
  /* the checkpointer (sq_ckpt.c) */
  struct conn ck;               /* its connection */
  pthread_t ck_thread;
  pthread_mutex_t ck_mu;
  pthread_cond_t ck_cv;
  int ck_want, ck_stop;         /* guarded by ck_mu */
  int ck_copied;                /* guarded by ck_mu: frames the last pass copied */
  int ck_bulk;                  /* writer: an import is writing (sq_contact.c) */
  struct store_cascade_stats cstats_w; /* writer thread only */
  /* writer: an import's batches going along the B-trees (sq_contact.c):
     the last one's import and highest phone, whether the cache is the
     smaller one */
  int64_t imp_last_id;
  char imp_last_phone[16];
  int imp_small_cache;
  struct sq_counts counts;      /* writer: a campaign's figures (sq_counts.c) */
};

/* The backend's store of s (a cast: struct store is its first member). */
#define SQ(s) ((struct sq_store *)(s))

/* The id of a new row (store_backend.new_id): the one writer counts on from
   MAX(id) read at open. Inline: the SQLite bodies number every row they add
   without a call. */
static inline int64_t sq_new_id(struct store *s, enum store_id_kind kind) {
  return kind == STORE_ID_MESSAGE ? SQ(s)->next_msg_id++ : SQ(s)->next_att_id++;
}

/* sq_chan.c, on the writer thread: early statuses and receipts. */
#define EARLY_KEEP_MS (24LL * 3600 * 1000)   /* how long an early row is kept */
#define EARLY_EXPIRE_BATCH 1000              /* rows deleted per table per run */
#define EARLY_EXPIRE_EVERY_MS 1000.0         /* how often the writer runs it */
/* Whether the scope key may hold one more early row (and counts it): 1, or 0
   when it holds early_cap already (the row is refused and counted). */
int casc_early_admit(struct store *s, const char *key);
/* Forgets the counts (rows went without being counted down). */
void casc_early_forget(struct store *s);
/* Deletes up to EARLY_EXPIRE_BATCH early statuses and as many receipts
   older than cutoff (by their index on at). 0 or KK_ESTORE. */
int casc_early_expire(struct store *s, int64_t cutoff);

/* sq_cascade.c, on the writer thread: */
/* casc_new (store_casc.h) with this backend's ops and counters. */
int casc_start(struct store *s, struct store_msg_new *n, struct casc_first *f);
/* Looks again whether early receipts and statuses are kept (after some were
   removed, or a rollback undid what the writer knew). 0 or KK_ESTORE. */
int casc_early_check(struct store *s);
/* Reads an attempt from the columns of ATT_ROW, found from column i on. */
void casc_att_cols(sqlite3_stmt *st, int i, struct casc_att *a);
/* Reads attempt id (0, KK_ENOENT, KK_ESTORE). */
int casc_att_load(struct store *s, int64_t id, struct casc_att *a);
/* An attempt's status changed (sent/delivered/read/failed/expired);
   provider_id may be NULL, units is what a "sent" bills. pre: the attempt as
   the caller just read it in this transaction, or NULL to read it here. */
int casc_attempt_event(struct store *s, int64_t attempt_id, const struct casc_att *pre,
                       const char *status, const char *provider_id, const char *error,
                       int64_t at, int units);
/* The price of one unit on channel for account (0 if none). */
int64_t casc_price(struct store *s, int64_t account_id, const char *channel);

/* Opens a connection to path with kaskad's settings (writer: the one that
   writes). 0 or KK_ESTORE. */
/* ---- the backend's writes (struct store_backend.exec) and reads -------- */

/* sq_account.c */
int sq_account_create(struct store *s, struct store_op *op);
int sq_account_update(struct store *s, struct store_op *op);
int sq_key_add(struct store *s, struct store_op *op);
int sq_key_revoke(struct store *s, struct store_op *op);
int sq_accounts_each(struct store *s, void (*fn)(void *arg, const struct store_account *a),
                     void *arg);
int sq_keys_each(struct store *s,
                 void (*fn)(void *arg, const uint8_t hash[32], int64_t account_id), void *arg);
int sq_keys_list(struct store *s, void *rd, int64_t account_id,
                 void (*fn)(void *arg, const char *prefix, int64_t created_at,
                            int64_t revoked_at),
                 void *arg);
int sq_accounts_suspended(struct store *s, void (*fn)(void *arg, int64_t account_id), void *arg);
/* sq_settings.c */
int sq_route_put(struct store *s, struct store_op *op);
int sq_setting_put(struct store *s, struct store_op *op);
int sq_routes_each(struct store *s, void (*fn)(void *arg, const char *name, const char *config),
                   void *arg);
int sq_channels_each(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *channel,
                                const char *config),
                     void *arg);
int sq_prices_each(struct store *s,
                   void (*fn)(void *arg, int64_t account_id, const char *channel, int64_t price),
                   void *arg);
int sq_cascades_all(struct store *s,
                    void (*fn)(void *arg, int64_t account_id, const char *name,
                               const char *steps),
                    void *arg);
/* sq_template.c */
int sq_template_put(struct store *s, struct store_op *op);
int sq_templates_all(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *name,
                                const char *body, int64_t created_at, int64_t updated_at),
                     void *arg);
/* sq_retention.c */
int sq_retention(struct store *s, struct store_op *op);
/* sq_chan.c, sq_cascade.c: channels and cascades */
int sq_chan_trying(struct store *s, struct store_op *op);
int sq_chan_result(struct store *s, struct store_op *op);
int sq_chan_status(struct store *s, struct store_op *op);
int sq_step_timeout(struct store *s, struct store_op *op);
int sq_wa_inbound(struct store *s, struct store_op *op);
int sq_early_expire(struct store *s, struct store_op *op);
int sq_chan_due(struct store *s, int64_t now, int64_t *cursor_due, int64_t *cursor_id,
                struct store_chan_due *out, int max, int *n);
int sq_wait_due(struct store *s, int64_t now, struct store_wait_due *out, int max, int *n);
int64_t sq_wait_next(struct store *s);
int sq_wa_last_inbound(struct store *s, int64_t scope, const char *phone, int64_t *at);
/* Writer, before the commit: the batch's CHANNEL notes due by now and its
   SMS notes get the rows they hand out, as the transaction leaves them. */
void sq_notes_rows(struct store *s, int64_t now);

/* ---- messages, SMS and callbacks: writes and reads ------------------------ */
/* sq_msg.c */
int sq_msg_insert(struct store *s, struct store_op *op);
int sq_msg_cancel(struct store *s, struct store_op *op);
/* sq_sql.c */
int sq_sql(struct store *s, void *rd, const char *sql, const struct store_sql_arg *a, int n,
           store_sql_row_fn fn, void *arg);
/* Campaigns (store_campaign.c): their settings and status, and each
   recipient with its variant, planned time, message and status. */
#define SQ_CAMPAIGN_MIGRATION                                                  \
  ("CREATE TABLE campaigns("                                                   \
   " account_id INTEGER NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL,"     \
   " status TEXT NOT NULL, recipients INTEGER NOT NULL DEFAULT 0,"             \
   " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"                \
   " started_at INTEGER, finish_at INTEGER, lease_by TEXT, lease_until INTEGER,"\
   " PRIMARY KEY(account_id, name)) WITHOUT ROWID;"                            \
   "CREATE INDEX campaigns_status ON campaigns(status);"                       \
   "CREATE TABLE campaign_recipients("                                         \
   " account_id INTEGER NOT NULL, campaign TEXT NOT NULL, seq INTEGER NOT NULL,"\
   " phone TEXT NOT NULL, variant INTEGER NOT NULL, planned_at INTEGER NOT NULL,"\
   " vars TEXT, status TEXT NOT NULL, message TEXT, reason TEXT,"              \
   " PRIMARY KEY(account_id, campaign, seq)) WITHOUT ROWID;"                   \
   "CREATE INDEX campaign_recipients_due ON campaign_recipients"               \
   "(account_id, campaign, status, planned_at);")
/* A campaign's figures kept as its messages change (the report reads them
   instead of the messages): one row per (variant, channel, status) with the
   messages there, their cost, SMS-only cost and second deliveries; status
   'opted_out' counts the recipients who joined the stop-list after a message
   of the campaign. Kept in the transaction of the change: by triggers up
   to migration 30, since by the writer (sq_counts.c) but for the stop-list's
   trigger. A
   message's variant is -1 when it has none (sent by the API). Recipients
   refused for no route are tried again later (tries). */
#define SQ_CAMP_COUNT_ADD(R)                                                   \
  "INSERT INTO campaign_counts VALUES(" R ".account_id," R ".campaign,"        \
  "COALESCE(" R ".variant,-1),COALESCE(" R ".channel,'')," R ".status,1,"      \
  "COALESCE(" R ".cost,0),COALESCE(" R ".sms_only_cost,0),"                    \
  "COALESCE(" R ".delivered_twice,0),COALESCE(" R ".delivered_twice,0)>0)"     \
  " ON CONFLICT(account_id,campaign,variant,channel,status) DO UPDATE SET"     \
  " n=n+1,cost=cost+excluded.cost,sms_only_cost=sms_only_cost+"                \
  "excluded.sms_only_cost,twice=twice+excluded.twice,"                         \
  "twice_msgs=twice_msgs+excluded.twice_msgs;"
/* Recipients by status (and variant) are kept there too, as status
   'r:STATUS' on channel '': by these triggers as they change or go, and by
   the write that adds them (store_campaign.c), a batch at a time. */
#define SQ_CAMP_RCPT_ADD(R)                                                    \
  "INSERT INTO campaign_counts VALUES(" R ".account_id," R ".campaign,"        \
  R ".variant,'','r:'||" R ".status,1,0,0,0,0)"                                \
  " ON CONFLICT(account_id,campaign,variant,channel,status) DO UPDATE SET"     \
  " n=n+1;"
#define SQ_CAMP_RCPT_SUB(R)                                                    \
  "UPDATE campaign_counts SET n=n-1 WHERE account_id=" R ".account_id"         \
  " AND campaign=" R ".campaign AND variant=" R ".variant AND channel=''"      \
  " AND status='r:'||" R ".status;"
#define SQ_CAMP_COUNTS_MIGRATION                                               \
  ("ALTER TABLE messages ADD COLUMN variant INTEGER;"                          \
   "ALTER TABLE campaign_recipients ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;"\
   "CREATE TABLE campaign_counts("                                             \
   " account_id INTEGER NOT NULL, campaign TEXT NOT NULL,"                     \
   " variant INTEGER NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL,"   \
   " n INTEGER NOT NULL, cost INTEGER NOT NULL, sms_only_cost INTEGER NOT NULL,"\
   " twice INTEGER NOT NULL, twice_msgs INTEGER NOT NULL,"                     \
   " PRIMARY KEY(account_id, campaign, variant, channel, status)) WITHOUT ROWID;"\
   "INSERT INTO campaign_counts SELECT account_id,campaign,-1,"                \
   "COALESCE(channel,''),status,COUNT(*),COALESCE(SUM(cost),0),"               \
   "COALESCE(SUM(sms_only_cost),0),COALESCE(SUM(delivered_twice),0),"          \
   "COALESCE(SUM(delivered_twice>0),0) FROM messages WHERE campaign IS NOT NULL"\
   " GROUP BY account_id,campaign,COALESCE(channel,''),status;"                \
   "INSERT INTO campaign_counts SELECT account_id,campaign,variant,'',"        \
   "'r:'||status,COUNT(*),0,0,0,0 FROM campaign_recipients"                    \
   " GROUP BY account_id,campaign,variant,status;"                             \
   "CREATE TRIGGER campaign_counts_new AFTER INSERT ON messages"               \
   " WHEN NEW.campaign IS NOT NULL BEGIN " SQ_CAMP_COUNT_ADD("NEW") " END;"    \
   "CREATE TRIGGER campaign_counts_change AFTER UPDATE OF status,channel,cost,"\
   "sms_only_cost,delivered_twice ON messages WHEN NEW.campaign IS NOT NULL"   \
   " AND (OLD.status IS NOT NEW.status OR OLD.channel IS NOT NEW.channel"      \
   " OR OLD.cost IS NOT NEW.cost OR OLD.sms_only_cost IS NOT NEW.sms_only_cost"\
   " OR OLD.delivered_twice IS NOT NEW.delivered_twice) BEGIN"                 \
   " UPDATE campaign_counts SET n=n-1,cost=cost-COALESCE(OLD.cost,0),"         \
   "sms_only_cost=sms_only_cost-COALESCE(OLD.sms_only_cost,0),"                \
   "twice=twice-COALESCE(OLD.delivered_twice,0),"                              \
   "twice_msgs=twice_msgs-(COALESCE(OLD.delivered_twice,0)>0)"                 \
   " WHERE account_id=OLD.account_id AND campaign=OLD.campaign"                \
   " AND variant=COALESCE(OLD.variant,-1) AND channel=COALESCE(OLD.channel,'')"\
   " AND status=OLD.status; " SQ_CAMP_COUNT_ADD("NEW") " END;"                 \
   "CREATE TRIGGER campaign_counts_stop AFTER INSERT ON stoplist BEGIN"        \
   " INSERT INTO campaign_counts SELECT account_id,campaign,"                  \
   "COALESCE(variant,-1),COALESCE(NEW.channel,channel,''),'opted_out',1,0,0,0,0"\
   " FROM (SELECT account_id,campaign,variant,channel FROM messages"           \
   " WHERE to_number=NEW.phone AND account_id=NEW.account_id"                  \
   " AND created_at>=NEW.created_at-2592000000 ORDER BY id DESC LIMIT 1)"      \
   " WHERE campaign IS NOT NULL"                                               \
   " ON CONFLICT(account_id,campaign,variant,channel,status) DO UPDATE SET"     \
   " n=n+1; END;"                                                              \
   "CREATE TRIGGER campaign_counts_rcpt_change AFTER UPDATE OF status"         \
   " ON campaign_recipients WHEN OLD.status IS NOT NEW.status BEGIN "          \
   SQ_CAMP_RCPT_SUB("OLD") SQ_CAMP_RCPT_ADD("NEW") " END;"                     \
   "CREATE TRIGGER campaign_counts_rcpt_gone AFTER DELETE ON campaign_recipients"\
   " BEGIN " SQ_CAMP_RCPT_SUB("OLD") " END;")
/* The SMS row (ST_DUE_GET / ST_DUE_SCAN's columns) at st into d (text malloc'd). */
void sq_due_row(sqlite3_stmt *st, struct store_due *d);
/* sq_sms.c */
int sq_sms_submitted(struct store *s, struct store_op *op);
int sq_sms_failed(struct store *s, struct store_op *op);
int sq_sms_expired(struct store *s, struct store_op *op);
int sq_sms_retry(struct store *s, struct store_op *op);
int sq_msg_decide(struct store *s, struct store_op *op);
int sq_receipt(struct store *s, struct store_op *op);
int sq_inbound(struct store *s, struct store_op *op);
/* sq_outbox.c */
int sq_outbox_result(struct store *s, struct store_op *op);
int sq_outbox_defer(struct store *s, struct store_op *op);
int sq_outbox_trim(struct store *s, struct store_op *op);
int sq_outbox_accounts(struct store *s, int64_t now, int64_t after, int64_t *out, int max,
                       int *n);
int sq_outbox_due(struct store *s, int64_t account_id, int64_t now, struct store_outbox *out,
                  int max, int *n);
/* sq_msg.c (loop thread) */
int sq_sms_due(struct store *s, int64_t after_id, struct store_due *out, int max, int *n);
/* sq_read.c, sq_sms.c: on a pool thread, rd its reader */
int sq_nodes(struct store *s, void *rd, struct store_node *out, int max, int *n);
void *sq_reader_open(struct store *s);
void sq_reader_close(struct store *s, void *rd);
int sq_msg_get(struct store *s, void *rd, int64_t account_id, const char *public_id,
               struct store_msg_view *out);
int sq_msg_list(struct store *s, void *rd, int64_t account_id, const struct store_msg_filter *f,
                struct store_msg_view *out, int *n, int64_t *next_cursor);
int sq_reply_list(struct store *s, void *rd, int64_t account_id,
                  const struct store_reply_filter *f, struct store_reply_view *out, int *n,
                  int64_t *next_cursor);

int conn_open(struct conn *c, const char *path, int sync_full, int writer);
void conn_close(struct conn *c);

/* sq_counts.c: a campaign's figures kept by the writer. start: after the
   migrations, the hook set on the writer's connection (0 or KK_ESTORE);
   stop: before it closes. mark: at an operation's savepoint; undo: that
   savepoint rolled back (the notes since it dropped); drop: the
   transaction rolled back; flush: before its commit, the notes written
   into campaign_counts (0, or KK_ESTORE: the transaction must not commit). */
int sq_counts_start(struct sq_store *q);
void sq_counts_stop(struct sq_store *q);
void sq_counts_mark(struct sq_store *q);
void sq_counts_undo(struct sq_store *q);
void sq_counts_drop(struct sq_store *q);
int sq_counts_flush(struct sq_store *q);
/* The hook off while the writer changes tables it does not count (a
   contact import's rows: each change would call it), and on again. */
void sq_counts_pause(struct sq_store *q);
void sq_counts_resume(struct sq_store *q);

/* sq_ckpt.c: checkpoints beside the writer (after s->w is open; 0 or
   KK_ESTORE), and stops that (after the writer has stopped). */
int ckpt_start(struct store *s, const char *path, int sync_full);
void ckpt_stop(struct store *s);
/* Writer thread: whether an import is writing its batches (the log then
   starts over less often: sq_ckpt.c). */
void ckpt_bulk(struct store *s, int on);

/* Prepares statement id on c (the first use); aborts when it does not
   compile (a bug). */
sqlite3_stmt *sq_stmt_prepare(struct conn *c, enum stmt_id id);

/* Statement id of c, reset and without bindings. The helpers that every row
   calls are inline: the backend's files share them across translation
   units, and a call per bound column would cost on the hot path. */
static inline sqlite3_stmt *sq_stmt(struct conn *c, enum stmt_id id) {
  sqlite3_stmt *st = c->st[id];
  if (st == NULL) return sq_stmt_prepare(c, id);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

/* Runs a statement that returns no rows: 0, KK_EEXIST (constraint), KK_ESTORE. */
int sq_step_done(struct conn *c, sqlite3_stmt *st);
/* sq_step_done for a statement whose first row's first column is wanted
   (an UPDATE ... RETURNING): *out (NULL: not wanted) that value, 0 without
   a row. */
int sq_step_int64(struct conn *c, sqlite3_stmt *st, int64_t *out);
/* Looks up one row with st (bound): read(st, out) on it (read NULL: only
   whether there is one), then st reset. 0, KK_ENOENT (no row) or KK_ESTORE. */
typedef void (*sq_row_fn)(sqlite3_stmt *st, void *out);
int sq_lookup(sqlite3_stmt *st, sq_row_fn read, void *out);
/* Readers for sq_lookup: the first column as a number into int64_t *out,
   as text into char out[16] (a phone), as a malloc'd copy into char **out. */
void sq_row_int64(sqlite3_stmt *st, void *out);
void sq_row_phone(sqlite3_stmt *st, void *out);
void sq_row_dup(sqlite3_stmt *st, void *out);

static inline void sq_bind_text(sqlite3_stmt *st, int i, const char *s) {
  if (s)
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

/* Binds v, or NULL when v is 0 (times and ids that are not set). */
static inline void sq_bind_opt(sqlite3_stmt *st, int i, int64_t v) {
  if (v)
    sqlite3_bind_int64(st, i, v);
  else
    sqlite3_bind_null(st, i);
}
void sq_col_copy(sqlite3_stmt *st, int i, char *out, size_t cap);
/* malloc'd copy of a text column ("" for NULL). */
char *sq_col_dup(sqlite3_stmt *st, int i);
/* Runs a statement of id that returns no rows (as sq_step_done). */
int sq_exec(struct conn *c, enum stmt_id id);
/* Applies the migrations the database has not had yet. 0 or KK_ESTORE. */
int sq_migrate(struct conn *c);
/* Monotonic milliseconds. */
double sq_mono_ms(void);

#endif
