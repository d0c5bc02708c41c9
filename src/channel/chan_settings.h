/*
 * chan_settings.h - the channel settings (PUT /v1/channels/{channel}):
 * parsing by the fields each driver declares (chan_driver.fields), their
 * stored JSON form, and the copy the channel engine keeps in memory (an
 * account's own settings, else the operator's, account 0).
 */
#ifndef CHAN_SETTINGS_H
#define CHAN_SETTINGS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "channel/channel.h"

struct chan_engine;

/*
 * Validates a PUT /v1/channels/{channel} body into cfg by the fields the
 * channel's driver declares. Unknown fields are refused here (a mistyped
 * secret name must not pass silently). Returns 0, or KK_EINVAL with err
 * naming the field (*field points into obj or the field table).
 */
int chan_settings_parse(const char *channel, json_t *obj, struct chan_cfg *cfg, char *err,
                        size_t errcap, const char **field);
/* The settings as stored JSON (new reference; the caller json_decref()s). */
json_t *chan_settings_json(const struct chan_cfg *cfg);

/* The effective settings of a channel for an account: the account's own,
   else the operator's (account 0); NULL when neither. *scope (may be NULL)
   receives whose. */
const struct chan_cfg *chan_settings_get(struct chan_engine *e, int64_t account_id,
                                         const char *channel, int64_t *scope);
/* The settings stored for exactly this scope (account id, 0 = operator), or
   NULL. */
const struct chan_cfg *chan_settings_find(struct chan_engine *e, int64_t scope,
                                          const char *channel);
/* Replaces (cfg NULL: removes) the cached settings after their commit. */
void chan_settings_put(struct chan_engine *e, int64_t account_id, const char *channel,
                       const struct chan_cfg *cfg);
/* Reads every stored channel's settings into the cache. 0 or KK_ESTORE. */
int chan_settings_load(struct chan_engine *e);
/* Empties the cache (at free). */
void chan_settings_clear(struct chan_engine *e);

#endif
