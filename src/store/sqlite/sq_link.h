/*
 * sq_link.h - the tables of tracked links in the SQLite backend
 * (store_link.h): codes, clicks, conversions and the campaign counters.
 */
#ifndef SQ_LINK_H
#define SQ_LINK_H

#define SQ_LINK_MIGRATION                                                      \
  ("CREATE TABLE link_codes("                                                  \
   " code TEXT NOT NULL PRIMARY KEY, account_id INTEGER NOT NULL,"             \
   " campaign TEXT NOT NULL, variant INTEGER NOT NULL, phone TEXT NOT NULL,"   \
   " message TEXT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL,"      \
   " created_at INTEGER NOT NULL, clicks INTEGER NOT NULL DEFAULT 0,"          \
   " first_click_at INTEGER);"                                                 \
   "CREATE INDEX link_codes_message ON link_codes(message);"                   \
   "CREATE TABLE link_clicks("                                                 \
   " id INTEGER PRIMARY KEY, code TEXT NOT NULL, at INTEGER NOT NULL,"         \
   " user_agent TEXT);"                                                        \
   "CREATE INDEX link_clicks_code ON link_clicks(code, at);"                   \
   "CREATE TABLE conversions("                                                 \
   " id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,"                     \
   " campaign TEXT NOT NULL, message TEXT NOT NULL, phone TEXT NOT NULL,"      \
   " channel TEXT NOT NULL, variant INTEGER NOT NULL, value INTEGER NOT NULL," \
   " at INTEGER NOT NULL);"                                                    \
   "CREATE INDEX conversions_campaign ON conversions(account_id, campaign, id);"\
   "CREATE TABLE link_counts("                                                 \
   " account_id INTEGER NOT NULL, campaign TEXT NOT NULL, channel TEXT NOT NULL,"\
   " variant INTEGER NOT NULL, clicked INTEGER NOT NULL DEFAULT 0,"            \
   " clicked_unique INTEGER NOT NULL DEFAULT 0,"                               \
   " converted INTEGER NOT NULL DEFAULT 0, value INTEGER NOT NULL DEFAULT 0,"  \
   " PRIMARY KEY(account_id, campaign, channel, variant)) WITHOUT ROWID;")

/* Link previews (link/link_preview.h): a fetch marked as one, and their
   count beside the clicks. */
#define SQ_LINK_PREVIEW_MIGRATION                                              \
  ("ALTER TABLE link_clicks ADD COLUMN preview INTEGER NOT NULL DEFAULT 0;"    \
   "ALTER TABLE link_counts ADD COLUMN previews INTEGER NOT NULL DEFAULT 0;")

#endif
