/*
 * kk_cfg.h - the daemon's settings.
 *
 * Every setting has a name; its value comes, lowest priority first, from the
 * built-in default, the config file (`name = value` lines, `#` comments,
 * `[route NAME]` sections for upstream SMS routes), the environment
 * (KASKAD_<NAME> in upper case) and the command line (--name VALUE).
 */
#ifndef KK_CFG_H
#define KK_CFG_H

#include <stdio.h>

/* X(name, default, help) - the one list of settings. */
#define KK_CFG_SETTINGS(X)                                                        \
  X(config, "kaskad.conf", "configuration file (read if present)")                \
  X(data, "var", "data folder (the SQLite database lives here; its lock and other files in any case)") \
  X(store, "", "the store: empty or sqlite (in data), or postgresql://user:pass@host/db") \
  X(node_id, "", "this node's name in GET /v1/nodes (default: host name and HTTP port)") \
  X(store_writers, "3", "PostgreSQL: write connections of all live nodes together (1 to 64): each node writes through its share (at least 1, at most 8)") \
  X(node_lease, "10s", "PostgreSQL: a node whose heartbeat is older than this is dead and others take over its work") \
  X(http, "127.0.0.1:8080", "HTTP API listen address")                            \
  X(http_timeout, "10s", "a request must arrive whole within this; idle connections close after it") \
  X(public_url, "", "public base URL (default http:// + the HTTP address)")       \
  X(admin_key, "", "operator API key (creates accounts and keys, manages routes)") \
  X(log_level, "info", "debug, info, warn or error")                              \
  X(sync, "full", "SQLite synchronous mode: full (survives power loss) or normal") \
  X(max_body, "1048576", "largest accepted request body in bytes")                \
  X(max_import, "1073741824", "largest contact import (CSV body) in bytes")       \
  X(campaign_batch, "10000", "recipients of a campaign read, planned and stored at a time while it is planned (100 to 10000)") \
  X(test_clock, "off", "on: POST /v1/test/clock may move the clock forward (tests only)") \
  X(quiet_hours, "21:00-09:00", "quiet hours of an account whose policy names none (recipient-local); off: none") \
  X(ttl_service, "24h", "default validity of service messages")                   \
  X(ttl_transactional, "1h", "default validity of transactional messages")        \
  X(ttl_advertising, "24h", "default validity of advertising messages")           \
  X(retry_min, "2s", "first retry delay after a temporary SMSC error")            \
  X(retry_max, "5m", "longest retry delay")                                       \
  X(callback_timeout, "10s", "timeout of one customer callback request")         \
  X(callback_per_account, "8", "callback requests of one account in flight at once") \
  X(callback_queue_per_account, "10000", "callbacks one account may have waiting; the oldest beyond are dropped") \
  X(callback_breaker, "5", "failed callback tries in a row that open a host's circuit breaker") \
  X(callback_cooldown, "30s", "how long an open circuit breaker sends nothing to its host") \
  X(hook_rate, "200", "provider webhook requests per second per scope (burst: twice that)") \
  X(shutdown_timeout, "10s", "how long SIGTERM waits for in-flight work")        \
  X(outbound_allow, "", "comma-separated CIDR ranges outbound requests may reach besides public addresses (e.g. 10.1.0.0/16)") \
  X(rate_key, "200/s:400", "requests per API key: RATE/s (or /m, /h), :BURST optional; 0 = no limit") \
  X(rate_account, "500/s:1000", "requests per account over all its keys (as rate_key); 0 = no limit") \
  X(max_conns_per_ip, "256", "open HTTP connections from one IP address (0 = no limit)") \
  X(retention, "90d", "finished messages are deleted this long after their last change (0 = keep)") \
  X(tls_cert, "", "PEM certificate (chain): the listeners serve HTTPS (with tls_key)") \
  X(tls_key, "", "PEM private key of tls_cert")                                   \
  X(admin_http, "", "private listen address of the operator API and /metrics (empty: http)") \
  X(hlr_url, "", "HLR/MNP lookup service (GET URL?phone=...): the current operator of ported numbers and roaming; none: the register's operator") \
  X(hlr_ttl, "24h", "how long an HLR/MNP answer is kept for a number") \
  X(numbering, "", "folder of the numbering-plan register (DEF-9xx.csv, region_tz.csv): operator, region and time zone of a number") \
  X(default_route, "", "SMS route of accounts without their own sms_route; none: the only route, if there is just one") \
  X(route_down, "10s", "an SMS route with no bound session this long is down: messages it would get go to the next cheapest")

enum kk_cfg_key {
#define X(name, def, help) KK_CFG_##name,
  KK_CFG_SETTINGS(X)
#undef X
  KK_CFG__COUNT
};

#define KK_CFG_MAX_ROUTES 32

/* The keys of a [route NAME] section (what api_route_cfg_parse reads); any
   other key is an error at start, so that a misspelt setting is not
   silently left at its default. */
#define KK_CFG_ROUTE_KEYS                                                     \
  "protocol", "host", "port", "system_id", "password", "system_type", "sessions", \
      "window", "max_sps", "data_coding", "enquire_link", "resp_timeout_ms",  \
      "throttle_pause_ms", "reconnect_min_ms", "reconnect_max_ms"
#define KK_CFG_ROUTE_NKEYS 15

/* A [route NAME] section: its keys and values as written. */
struct kk_cfg_route {
  char name[64];
  int nkeys;
  char keys[16][32];
  char values[16][256];
};

struct kk_cfg {
  char *value[KK_CFG__COUNT];        /* owned strings */
  int nroutes;
  struct kk_cfg_route routes[KK_CFG_MAX_ROUTES];
};

/*
 * Builds the configuration from defaults, file, environment and argv.
 * Returns 0, 1 when --help was printed, or KK_EINVAL with a message on
 * stderr. Free with kk_cfg_fini().
 */
int kk_cfg_load(struct kk_cfg *cfg, int argc, char **argv);
void kk_cfg_fini(struct kk_cfg *cfg);
const char *kk_cfg_get(const struct kk_cfg *cfg, enum kk_cfg_key key);
/* The setting's name, e.g. "ttl_service". */
const char *kk_cfg_name(enum kk_cfg_key key);
void kk_cfg_usage(FILE *out);

/* Parses "90s", "10m", "2h", "1d", "500ms" or plain seconds into ms.
   Returns 0 or KK_EINVAL. */
int kk_parse_duration_ms(const char *s, long long *ms);
/* Splits "host:port"; returns 0 or KK_EINVAL. */
int kk_parse_hostport(const char *s, char *host, size_t cap, int *port);

#endif
