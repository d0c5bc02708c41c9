/*
 * main.c - the kaskad daemon: settings, store, routes, HTTP API, one loop.
 *
 * SIGTERM or SIGINT drains: new requests are refused, requests waiting for a
 * commit get their answers, SMPP sessions wait for outstanding responses and
 * unbind, the store commits what is queued, then the process exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <uv.h>

#include "api/api.h"
#include "api/api_camp.h"
#include "callback/callback.h"
#include "cascade/cascade.h"
#include "core/kk_cfg.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_net.h"
#include "dispatch/dispatch.h"
#include "dispatch/dispatch_hlr.h"
#include "http/http_client.h"
#include "http/http_server.h"
#include "http/http_tls.h"
#include "phone/phone_plan.h"
#include "policy/pol_quiet.h"
#include "contact/contact_import.h"
#include "store/store.h"

#define LOGCTX "kaskad"

struct daemon {
  uv_loop_t *loop;
  struct pol_window quiet;   /* setting quiet_hours */
  struct kk_cfg cfg;
  struct store *store;
  struct dispatch *dispatch;
  struct callback *callback;  /* NULL once stopped */
  struct cascade *cascade;    /* NULL once stopped */
  struct http_server *http;
  struct http_server *admin_http; /* NULL: the operator API is served on http */
  char *tls_cert, *tls_key;       /* PEM texts until the listeners start (NULL: no TLS) */
  struct phone_plan *plan;        /* the numbering register (NULL: none) */
  struct dispatch_hlr *hlr;       /* HLR/MNP lookups (NULL: none, or stopped) */
  struct api api;
  uv_signal_t sigterm, sigint;
  uv_timer_t drain_timer;
  uint64_t drain_deadline;
  int phase;                /* 0 running, 1 draining requests, 2 closing routes, 3 done */
};

static void load_db_route(void *arg, const char *name, const char *config) {
  struct daemon *d = arg;
  json_error_t jerr;
  json_t *o = json_loads(config, 0, &jerr);
  struct dispatch_route_cfg rc;
  char err[160];
  if (o == NULL || api_route_cfg_parse(o, name, &rc, err, sizeof err) != 0)
    kk_error(LOGCTX, "stored route %s is unusable and was skipped", name);
  else
    dispatch_route_put(d->dispatch, &rc);
  json_decref(o);
}

static int load_file_routes(struct daemon *d) {
  for (int i = 0; i < d->cfg.nroutes; i++) {
    const struct kk_cfg_route *r = &d->cfg.routes[i];
    json_t *o = json_object();
    for (int k = 0; k < r->nkeys; k++) json_object_set_new(o, r->keys[k], json_string(r->values[k]));
    struct dispatch_route_cfg rc;
    char err[160];
    int bad = api_route_cfg_parse(o, r->name, &rc, err, sizeof err);
    json_decref(o);
    if (bad) {
      fprintf(stderr, "kaskad: [route %s]: %s\n", r->name, err);
      return KK_EINVAL;
    }
    dispatch_route_put(d->dispatch, &rc);
  }
  return 0;
}

/*
 * One kaskad per data folder: two writers on one database would each believe
 * it owns the queued work and send it twice. The lock (flock on DIR/kaskad.lock)
 * is held until the process exits, whatever way it exits, so a crash never
 * leaves a stale lock behind. 0, or KK_EBUSY (another kaskad holds it) or KK_EIO, with
 * the reason on stderr.
 */
static int lock_data_dir(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/kaskad.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "kaskad: cannot open %s: %s\n", path, strerror(errno));
    return KK_EIO;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    if (e == EWOULDBLOCK)
      fprintf(stderr, "kaskad: the data folder %s is in use by another kaskad (pid %s); stop "
              "it first or give another --data\n", dir, pid[0] ? pid : "unknown");
    else
      fprintf(stderr, "kaskad: cannot lock %s: %s\n", path, strerror(e));
    close(fd);
    return e == EWOULDBLOCK ? KK_EBUSY : KK_EIO;
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
    kk_warnx(LOGCTX, "cannot write the pid into %s", path);
  return 0;  /* fd stays open: the lock lives as long as the process */
}

/* A default_route must name a route of the file or of the store: a typo
   would otherwise leave every account without a route. */
static int check_default_route(struct daemon *d) {
  const char *want = kk_cfg_get(&d->cfg, KK_CFG_default_route);
  const char *got = dispatch_route_pick(d->dispatch, NULL);
  if (!want[0] || (got && strcmp(got, want) == 0)) return 0;
  fprintf(stderr, "kaskad: default_route: no route \"%s\" (neither a [route] section nor "
          "one added with PUT /v1/routes)\n", want);
  return KK_EINVAL;
}

static void close_rest(struct daemon *d) {
  d->phase = 3;
  http_server_stop(d->http);
  if (d->admin_http) http_server_stop(d->admin_http);
  api_retention_stop(&d->api);
  api_camp_run_stop(&d->api);
  api_stop(&d->api);
  store_close(d->store);
  dispatch_free(d->dispatch);
  uv_close((uv_handle_t *)&d->drain_timer, NULL);
  uv_close((uv_handle_t *)&d->sigterm, NULL);
  uv_close((uv_handle_t *)&d->sigint, NULL);
  kk_info(LOGCTX, "stopped");
}

static void on_routes_closed(void *ud) {
  struct daemon *d = ud;
  kk_info(LOGCTX, "routes closed; committing what remains");
  /* Status updates from the last responses are queued: the timer waits for them. */
  d->phase = 3;
}

static void on_callbacks_stopped(void *ud) {
  struct daemon *d = ud;
  d->callback = NULL;
  d->api.callback = NULL;
}

static void on_hlr_stopped(void *ud) {
  struct daemon *d = ud;
  d->hlr = NULL;
}

static void on_cascade_stopped(void *ud) {
  struct daemon *d = ud;
  cascade_free(d->cascade);
  d->cascade = NULL;
  d->api.cascade = NULL;
  d->api.accept.cascade = NULL;
}

static int inflight(const struct daemon *d) {
  return http_server_inflight(d->http) + (d->admin_http ? http_server_inflight(d->admin_http) : 0);
}

static void on_drain_tick(uv_timer_t *t) {
  struct daemon *d = t->data;
  int late = uv_now(d->loop) >= d->drain_deadline;
  /* Out of time: writes the database refuses (locked, I/O errors) stop
     being tried again, so that the sends waiting for them can end. */
  if (late) store_give_up(d->store);
  if (d->phase == 1) {
    if ((inflight(d) == 0 && store_pending(d->store) == 0) || late) {
      if (late) kk_warnx(LOGCTX, "drain timeout: %d requests still waiting", inflight(d));
      d->phase = 2;
      cascade_stop(d->cascade, on_cascade_stopped, d);
      dispatch_stop(d->dispatch, on_routes_closed, d);
    }
    return;
  }
  if (d->phase == 3 && d->callback == NULL && d->cascade == NULL && d->hlr == NULL &&
      (store_pending(d->store) == 0 || late)) {
    uv_timer_stop(t);
    close_rest(d);
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  struct daemon *d = h->data;
  if (d->phase != 0) {
    kk_warnx(LOGCTX, "second signal: already stopping");
    return;
  }
  kk_info(LOGCTX, "signal %d: draining", signum);
  d->phase = 1;
  d->api.draining = 1;
  callback_stop(d->callback, on_callbacks_stopped, d);
  if (d->hlr) {
    d->api.hlr = NULL;
    dispatch_set_hlr(d->dispatch, NULL);
    dispatch_hlr_stop(d->hlr, on_hlr_stopped, d);
  }
  http_server_quiesce(d->http);
  if (d->admin_http) http_server_quiesce(d->admin_http);
  long long ms = 10000;
  kk_parse_duration_ms(kk_cfg_get(&d->cfg, KK_CFG_shutdown_timeout), &ms);
  d->drain_deadline = uv_now(d->loop) + (uint64_t)ms;
  uv_timer_start(&d->drain_timer, on_drain_tick, 0, 20);
}

static int parse_ms(const struct kk_cfg *cfg, enum kk_cfg_key k, long long *out) {
  if (kk_parse_duration_ms(kk_cfg_get(cfg, k), out) != 0) {
    fprintf(stderr, "kaskad: %s: \"%s\" is not a duration (e.g. 90s, 10m, 2h)\n",
            kk_cfg_name(k), kk_cfg_get(cfg, k));
    return KK_EINVAL;
  }
  return 0;
}

/* A whole number from min up into *out, or KK_EINVAL (said on stderr). */
static int parse_count(const struct kk_cfg *cfg, enum kk_cfg_key k, long min, long *out) {
  const char *v = kk_cfg_get(cfg, k);
  char *end = NULL;
  long n = strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < min) {
    fprintf(stderr, "kaskad: %s: \"%s\" is not a whole number from %ld up\n", kk_cfg_name(k), v,
            min);
    return KK_EINVAL;
  }
  *out = n;
  return 0;
}

static int parse_rate(const struct kk_cfg *cfg, enum kk_cfg_key k, struct kk_limit *out) {
  if (kk_limit_parse(kk_cfg_get(cfg, k), out) != 0) {
    fprintf(stderr, "kaskad: %s: \"%s\" is not a rate (e.g. 200/s, 6000/m, 200/s:1000, 0)\n",
            kk_cfg_name(k), kk_cfg_get(cfg, k));
    return KK_EINVAL;
  }
  return 0;
}

/* Reads tls_cert and tls_key into *cert and *key (malloc'd; both NULL when
   neither is set). 0, or KK_EINVAL with a message on stderr. */
static int load_tls(const struct kk_cfg *cfg, char **cert, char **key) {
  const char *cp = kk_cfg_get(cfg, KK_CFG_tls_cert), *kp = kk_cfg_get(cfg, KK_CFG_tls_key);
  *cert = *key = NULL;
  if (!*cp && !*kp) return 0;
  if (!*cp || !*kp) {
    fprintf(stderr, "kaskad: tls_cert and tls_key must be given together (only %s is set)\n",
            *cp ? "tls_cert" : "tls_key");
    return KK_EINVAL;
  }
  char err[512];
  if (http_tls_load(cp, kp, cert, key, err, sizeof err) != 0) {
    fprintf(stderr, "kaskad: %s\n", err);
    return KK_EINVAL;
  }
  return 0;
}

/* The data folder and the files in it are the operator's alone: the folder
   0700, the database, its -wal and -shm files and key files 0600 (the umask
   makes new ones so; older ones are tightened here). */
static int private_data(const char *dir) {
  umask(077);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "kaskad: cannot create %s: %s\n", dir, strerror(errno));
    return KK_EIO;
  }
  if (chmod(dir, 0700) != 0) kk_log_warn(LOGCTX, "chmod %s", dir);
  DIR *dh = opendir(dir);
  if (dh == NULL) return 0;
  struct dirent *e;
  while ((e = readdir(dh)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
      chmod(path, st.st_mode & 0700);
  }
  closedir(dh);
  return 0;
}

/* A server for the API with opts, listening in *out: 0, or 1 with *out
   NULL when it cannot listen (logged). */
static int listen_on(struct daemon *d, const struct http_server_opts *opts,
                     struct http_server **out) {
  struct http_server *srv = http_server_new(d->loop, opts, api_handle, &d->api);
  if (http_server_start(srv) != 0) {
    http_server_free(srv);
    *out = NULL;
    return 1;
  }
  *out = srv;
  return 0;
}

/* Starts the public listener and, when admin_http is set, the operator's
   (both with the same TLS key material from load_tls(), which this frees:
   the servers keep copies). 0, 1 (cannot listen) or 2 (settings). */
static int start_listeners(struct daemon *d, struct http_server_opts *hopts) {
  hopts->tls_cert_pem = d->tls_cert;
  hopts->tls_key_pem = d->tls_key;
  hopts->listener = API_LISTENER_PUBLIC;
  int rc = 0;
  const char *admin = kk_cfg_get(&d->cfg, KK_CFG_admin_http);
  char ahost[256];
  int aport = 0;
  if (*admin && kk_parse_hostport(admin, ahost, sizeof ahost, &aport) != 0) {
    fprintf(stderr, "kaskad: admin_http must be HOST:PORT\n");
    rc = 2;
  } else {
    rc = listen_on(d, hopts, &d->http);
    if (rc == 0 && *admin) {
      struct http_server_opts aopts = *hopts;
      aopts.host = ahost;
      aopts.port = aport;
      aopts.listener = API_LISTENER_ADMIN;
      rc = listen_on(d, &aopts, &d->admin_http);
      d->api.admin_split = 1;
      kk_info(LOGCTX, "operator API and /metrics on %s only", admin);
    }
  }
  if (d->tls_key) OPENSSL_cleanse(d->tls_key, strlen(d->tls_key));
  free(d->tls_cert);
  free(d->tls_key);
  d->tls_cert = d->tls_key = NULL;
  return rc;
}

/* Setting quiet_hours: "21:00-09:00", or "off" (no window). 0 or -1. */
static int quiet_parse(const char *s, struct pol_window *w) {
  char from[8], to[8];
  const char *dash = strchr(s, '-');
  if (strcmp(s, "off") == 0) return w->from_min = w->to_min = 0, 0;
  if (dash == NULL || dash - s >= (long)sizeof from || strlen(dash + 1) >= sizeof to) return -1;
  snprintf(from, sizeof from, "%.*s", (int)(dash - s), s);
  snprintf(to, sizeof to, "%s", dash + 1);
  return pol_hhmm_parse(from, &w->from_min) == 0 && pol_hhmm_parse(to, &w->to_min) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  static struct daemon d;
  int rc = kk_cfg_load(&d.cfg, argc, argv);
  if (rc == 1) return 0;
  if (rc) return 2;
  int lvl = kk_log_parse_level(kk_cfg_get(&d.cfg, KK_CFG_log_level));
  if (lvl < 0) {
    fprintf(stderr, "kaskad: log_level must be debug, info, warn or error\n");
    return 2;
  }
  kk_log_level = (enum kk_log_level)lvl;
  signal(SIGPIPE, SIG_IGN);

  char host[256];
  int port;
  if (kk_parse_hostport(kk_cfg_get(&d.cfg, KK_CFG_http), host, sizeof host, &port) != 0) {
    fprintf(stderr, "kaskad: http must be HOST:PORT\n");
    return 2;
  }
  struct dispatch_opts dopts = {.hold = &d.api.hold};
  snprintf(dopts.default_route, sizeof dopts.default_route, "%s",
           kk_cfg_get(&d.cfg, KK_CFG_default_route));
  long long ttl[3];
  if (parse_ms(&d.cfg, KK_CFG_ttl_service, &ttl[0]) || parse_ms(&d.cfg, KK_CFG_ttl_transactional, &ttl[1]) ||
      parse_ms(&d.cfg, KK_CFG_ttl_advertising, &ttl[2]) ||
      parse_ms(&d.cfg, KK_CFG_retry_min, &dopts.retry_min_ms) ||
      parse_ms(&d.cfg, KK_CFG_retry_max, &dopts.retry_max_ms) ||
      parse_ms(&d.cfg, KK_CFG_route_down, &dopts.route_down_ms))
    return 2;
  const char *sync = kk_cfg_get(&d.cfg, KK_CFG_sync);
  if (strcmp(sync, "full") != 0 && strcmp(sync, "normal") != 0) {
    fprintf(stderr, "kaskad: sync must be full or normal\n");
    return 2;
  }

  /* Read before anything starts: a bad file stops kaskad at once. */
  if (load_tls(&d.cfg, &d.tls_cert, &d.tls_key) != 0) return 2;
  const char *numbering = kk_cfg_get(&d.cfg, KK_CFG_numbering);
  if (*numbering && phone_plan_open(numbering, &d.plan) != 0) {
    fprintf(stderr, "kaskad: numbering: no numbering-plan register in %s (see the log)\n", numbering);
    return 2;
  }
  if (!*numbering)
    kk_info(LOGCTX, "no numbering register (setting numbering): numbers get no operator, region "
                    "or time zone");
  long long cb_timeout, http_timeout, cb_cooldown;
  long cb_per_account, cb_queue, cb_breaker;
  if (parse_ms(&d.cfg, KK_CFG_callback_timeout, &cb_timeout) ||
      parse_ms(&d.cfg, KK_CFG_http_timeout, &http_timeout) ||
      parse_ms(&d.cfg, KK_CFG_callback_cooldown, &cb_cooldown) ||
      parse_count(&d.cfg, KK_CFG_callback_per_account, 1, &cb_per_account) ||
      parse_count(&d.cfg, KK_CFG_callback_queue_per_account, 1, &cb_queue) ||
      parse_count(&d.cfg, KK_CFG_callback_breaker, 1, &cb_breaker) ||
      parse_count(&d.cfg, KK_CFG_hook_rate, 1, &d.api.hook_rate))
    return 2;
  struct kk_net_allow allow;
  char bad[80];
  if (kk_net_allow_parse(kk_cfg_get(&d.cfg, KK_CFG_outbound_allow), &allow, bad, sizeof bad) != 0) {
    fprintf(stderr, "kaskad: outbound_allow: \"%s\" is not an address range (e.g. 10.1.0.0/16), "
                    "or there are more than %d\n", bad, KK_NET_ALLOW_MAX);
    return 2;
  }
  http_client_allow(&allow);
  curl_global_init(CURL_GLOBAL_DEFAULT);

  struct kk_limit rate_key, rate_account;
  long long retention_ms;
  long long hlr_ttl;
  if (parse_rate(&d.cfg, KK_CFG_rate_key, &rate_key) ||
      parse_rate(&d.cfg, KK_CFG_rate_account, &rate_account) ||
      parse_ms(&d.cfg, KK_CFG_retention, &retention_ms) ||
      parse_ms(&d.cfg, KK_CFG_hlr_ttl, &hlr_ttl))
    return 2;
  int per_ip = atoi(kk_cfg_get(&d.cfg, KK_CFG_max_conns_per_ip));

  d.loop = uv_default_loop();
  const char *dir = kk_cfg_get(&d.cfg, KK_CFG_data);
  if (private_data(dir) != 0) return 1;
  if (lock_data_dir(dir) != 0) return 1;
  /* store: SQLite in the data folder (empty, "sqlite") or a PostgreSQL URL */
  const char *store_url = kk_cfg_get(&d.cfg, KK_CFG_store);
  if (!*store_url || strcmp(store_url, "sqlite") == 0) store_url = NULL;
  long long node_lease = 0;
  if (parse_ms(&d.cfg, KK_CFG_node_lease, &node_lease)) return 2;
  int writers = atoi(kk_cfg_get(&d.cfg, KK_CFG_store_writers));
  if (writers < 1 || writers > STORE_WRITERS_ALL_MAX) {
    kk_error(LOGCTX, "store_writers must be 1 to %d, not %s", STORE_WRITERS_ALL_MAX,
             kk_cfg_get(&d.cfg, KK_CFG_store_writers));
    return 2;
  }
  /* the node's name: node_id, else this host's name and HTTP port */
  char node_name[300];
  snprintf(node_name, sizeof node_name, "%s", kk_cfg_get(&d.cfg, KK_CFG_node_id));
  if (!node_name[0]) {
    char hn[200] = "localhost";
    gethostname(hn, sizeof hn - 1);
    snprintf(node_name, sizeof node_name, "%s:%d", hn, port);
  }
  struct store_opts sopts = {.dir = dir, .synchronous_full = strcmp(sync, "full") == 0,
                             .store_url = store_url, .node_name = node_name,
                             .node_lease_ms = node_lease,
                             .writers = writers};
  if (store_open(d.loop, &sopts, &d.store) != 0) return 1;
  dopts.plan = d.plan;
  d.dispatch = dispatch_new(d.loop, d.store, &dopts);
  if (load_file_routes(&d) != 0) return 2;
  store_routes_each(d.store, load_db_route, &d);
  if (check_default_route(&d) != 0) return 2;
  struct callback_opts copts = {.timeout_ms = (long)cb_timeout,
                                .per_account = (int)cb_per_account,
                                .queue_per_account = cb_queue,
                                .breaker_failures = (int)cb_breaker,
                                .breaker_cooldown_ms = (long)cb_cooldown};
  d.callback = callback_new(d.loop, d.store, &copts);
  if (d.callback == NULL) return 1;
  callback_start(d.callback);

  char public_url[300];
  snprintf(public_url, sizeof public_url, "%s", kk_cfg_get(&d.cfg, KK_CFG_public_url));
  if (public_url[0] == '\0')
    snprintf(public_url, sizeof public_url, "%s://%s:%d",
             *kk_cfg_get(&d.cfg, KK_CFG_tls_cert) ? "https" : "http", host, port);
  struct chan_engine_opts kopts = {.public_url = public_url,
                               .retry_min_ms = (long)dopts.retry_min_ms / 2,
                               .hold = &d.api.hold};
  d.cascade = cascade_new(d.loop, d.store, d.dispatch, &kopts);
  if (d.cascade == NULL) return 1;

  d.api.loop = d.loop;
  d.api.cascade = d.cascade;
  d.api.store = d.store;
  d.api.dispatch = d.dispatch;
  d.api.callback = d.callback;
  snprintf(d.api.admin_key, sizeof d.api.admin_key, "%s", kk_cfg_get(&d.cfg, KK_CFG_admin_key));
  memcpy(d.api.ttl_ms, ttl, sizeof ttl);
  d.api.rate_key = rate_key;
  d.api.rate_account = rate_account;
  d.api.plan = d.plan;
  snprintf(d.api.public_url, sizeof d.api.public_url, "%s", public_url);
  if (*kk_cfg_get(&d.cfg, KK_CFG_hlr_url)) {
    struct dispatch_hlr_opts ho = {.url = kk_cfg_get(&d.cfg, KK_CFG_hlr_url), .ttl_ms = hlr_ttl};
    d.hlr = dispatch_hlr_new(d.loop, &ho);
    if (d.hlr == NULL) return 1;
    d.api.hlr = d.hlr;
    dispatch_set_hlr(d.dispatch, d.hlr);
  }
  /* contact imports: uploads under the data folder */
  d.api.max_import = (size_t)strtoull(kk_cfg_get(&d.cfg, KK_CFG_max_import), NULL, 10);
  d.api.camp_batch = atoi(kk_cfg_get(&d.cfg, KK_CFG_campaign_batch));
  if (d.api.camp_batch < 100 || d.api.camp_batch > CAMP_PLAN_BATCH) {
    kk_error(LOGCTX, "campaign_batch must be 100 to %d, not %s", CAMP_PLAN_BATCH,
             kk_cfg_get(&d.cfg, KK_CFG_campaign_batch));
    return 1;
  }
  d.api.test_clock = strcmp(kk_cfg_get(&d.cfg, KK_CFG_test_clock), "on") == 0;
  if (quiet_parse(kk_cfg_get(&d.cfg, KK_CFG_quiet_hours), &d.quiet) != 0) {
    kk_error(LOGCTX, "quiet_hours must be HH:MM-HH:MM or off, not %s",
             kk_cfg_get(&d.cfg, KK_CFG_quiet_hours));
    return 1;
  }
  d.api.quiet_default = &d.quiet;
  d.api.imports = contact_imports_new(d.loop, d.store, d.plan, dir);
  if (api_init(&d.api) != 0) return 1;
  api_retention_start(&d.api, retention_ms);
  api_camp_run_start(&d.api);

  struct http_server_opts hopts = {.host = host, .port = port,
                                   .max_body = (size_t)strtoull(kk_cfg_get(&d.cfg, KK_CFG_max_body), NULL, 10),
                                   .conn_timeout_s = (int)((http_timeout + 999) / 1000),
                                   .max_conns = 4096,
                                   .max_conns_per_ip = per_ip,
                                   .precheck = api_precheck};
  if (hopts.max_body < 1024) hopts.max_body = 1024;
  if ((rc = start_listeners(&d, &hopts)) != 0) return rc;

  uv_signal_init(d.loop, &d.sigterm);
  uv_signal_init(d.loop, &d.sigint);
  d.sigterm.data = d.sigint.data = &d;
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_timer_init(d.loop, &d.drain_timer);
  d.drain_timer.data = &d;

  dispatch_start(d.dispatch);
  if (cascade_start(d.cascade) != 0) return 1;
  d.api.ready = 1;
  kk_info(LOGCTX, "ready: %s://%s:%d (data in %s)", *kk_cfg_get(&d.cfg, KK_CFG_tls_cert) ? "https" : "http",
          host, http_server_port(d.http), dir);
  uv_run(d.loop, UV_RUN_DEFAULT);
  api_fini(&d.api);
  phone_plan_free(d.plan);
  kk_cfg_fini(&d.cfg);
  uv_loop_close(d.loop);
  curl_global_cleanup();
  return 0;
}
