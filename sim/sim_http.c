/*
 * sim_http.c - the simulator's HTTP control API (see sim_http.h).
 *
 * libmicrohttpd runs without its own thread: its epoll descriptor is
 * watched by a uv_poll handle and its timeouts by a uv_timer, and MHD_run
 * is called from those callbacks. Request bodies are collected per request
 * (at most BODY_MAX bytes) and handled when the last chunk has arrived.
 */
#include "sim_http.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"

#define BODY_MAX (1u << 20)
#define SUBMITS_LIMIT_DEFAULT 100
#define SUBMITS_MAX_BYTES (512u << 20)   /* cap of one GET /submits answer */

struct req;

struct sim_http {
  uv_loop_t *loop;
  struct MHD_Daemon *daemon;
  uv_poll_t poll;                 /* MHD's epoll descriptor */
  uv_timer_t timer;               /* MHD's next timeout */
  int closing;
  struct sim_http_opts o;
  struct req *suspended;          /* requests waiting for sim_chan's answer */
};

/* One request's collected body and, when sim_chan answers later, its
   answer; freed when MHD reports the request completed. */
struct req {
  struct kk_buf body;
  int too_big;
  struct sim_http *h;
  struct MHD_Connection *conn;
  int in_chan;                    /* inside sim_chan_handle */
  int suspended;                  /* on h->suspended, the connection suspended */
  int have_reply;                 /* reply holds sim_chan's answer, not yet queued */
  struct sim_chan_reply reply;
  struct req *sprev, *snext;      /* in h->suspended */
};

/* ---- replies ---- */

/* Queues body (malloc'd; MHD frees it) as the response. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  enum MHD_Result ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* Replies with v (reference taken over). */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *v) {
  char *s = json_dumps(v, JSON_COMPACT);
  json_decref(v);
  if (s == NULL) return MHD_NO;
  return reply(c, status, "application/json", s, strlen(s));
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status,
                                   const char *code, const char *message) {
  return reply_json(c, status,
                    json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}

/* ---- handlers ---- */

static enum MHD_Result get_config(struct sim_http *h, struct MHD_Connection *c) {
  return reply_json(c, MHD_HTTP_OK, sim_knobs_to_json(h->o.knobs));
}

static enum MHD_Result post_config(struct sim_http *h, struct MHD_Connection *c,
                                   struct req *r) {
  json_error_t jerr;
  json_t *in = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &jerr);
  if (in == NULL) return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_json", jerr.text);
  int before = h->o.knobs->disconnect_after;
  struct sim_knob_err kerr;
  if (sim_knobs_apply(h->o.knobs, in, &kerr) != 0) {
    json_decref(in);
    return reply_error(c, MHD_HTTP_BAD_REQUEST, kerr.code, kerr.message);
  }
  json_decref(in);
  if (h->o.knobs->disconnect_after != before) sim_smsc_knobs_changed(h->o.smsc);
  json_t *now = sim_knobs_to_json(h->o.knobs);
  char *line = json_dumps(now, JSON_COMPACT | JSON_SORT_KEYS);
  kk_info("http", "config: %s", line ? line : "?");
  free(line);
  return reply_json(c, MHD_HTTP_OK, now);
}

/* Reads an optional non-negative integer query argument into *out. */
static int query_int(struct MHD_Connection *c, const char *name, long long max,
                     long long *out) {
  const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
  if (v == NULL || *v == '\0') return 0;
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || *end != '\0' || n < 0 || n > max) return KK_EINVAL;
  *out = n;
  return 0;
}

static enum MHD_Result get_submits(struct sim_http *h, struct MHD_Connection *c) {
  struct sim_ring_filter f;
  memset(&f, 0, sizeof f);
  long long since = 0, limit = SUBMITS_LIMIT_DEFAULT;
  if (query_int(c, "since", INT64_MAX, &since) ||
      query_int(c, "limit", SIM_RING_CAP, &limit))
    return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_query",
                       "since and limit must be non-negative integers (limit at most 100000)");
  f.dest = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "dest");
  f.system_id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "system_id");
  if (f.dest && *f.dest == '\0') f.dest = NULL;
  if (f.system_id && *f.system_id == '\0') f.system_id = NULL;
  f.since_ms = since;
  f.limit = (size_t)limit;
  struct kk_buf out;
  kk_buf_init(&out, SUBMITS_MAX_BYTES);
  if (sim_ring_query(h->o.ring, &f, &out) != 0) {
    kk_buf_fini(&out);
    return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_big",
                       "the answer would be too large; lower limit");
  }
  size_t len;
  char *body = kk_buf_take(&out, &len);
  return reply(c, MHD_HTTP_OK, "application/json", body, len);
}

static const char *opt_string(const json_t *o, const char *name) {
  const json_t *v = json_object_get(o, name);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static enum MHD_Result post_mo(struct sim_http *h, struct MHD_Connection *c, struct req *r) {
  json_error_t jerr;
  json_t *in = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &jerr);
  if (in == NULL) return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_json", jerr.text);
  struct sim_mo mo = {
    .from = opt_string(in, "from"),
    .to = opt_string(in, "to"),
    .text = opt_string(in, "text"),
    .system_id = opt_string(in, "system_id"),
  };
  const json_t *sid = json_object_get(in, "system_id");
  if (!json_is_object(in) || mo.from == NULL || mo.to == NULL || mo.text == NULL ||
      (sid != NULL && !json_is_string(sid) && !json_is_null(sid))) {
    json_decref(in);
    return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                       "from, to and text are required strings; system_id is optional");
  }
  int sent = 0;
  int rc = sim_smsc_send_mo(h->o.smsc, &mo, &sent);
  json_decref(in);
  switch (rc) {
  case 0:
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:i}", "sent", sent));
  case KK_ENOENT:
    return reply_error(c, MHD_HTTP_CONFLICT, "no_session",
                       "no receiver or transceiver session is bound");
  case KK_EINVAL:
    return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                       "from and to must be 1 to 20 characters and text not empty");
  case KK_EUTF8:
    return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_text", "text is not valid UTF-8");
  case KK_ETOOBIG:
    return reply_error(c, MHD_HTTP_BAD_REQUEST, "too_long",
                       "text needs more parts than an SMS may have");
  default:
    return reply_error(c, MHD_HTTP_BAD_GATEWAY, "send_failed",
                       "the session closed while sending");
  }
}

static enum MHD_Result post_reset(struct sim_http *h, struct MHD_Connection *c, struct req *r) {
  int apps = 0;
  if (r->body.len > 0) {
    json_error_t jerr;
    json_t *in = json_loadb(r->body.p, r->body.len, 0, &jerr);
    const json_t *v = json_object_get(in, "apps");
    if (!json_is_object(in) || (v && !json_is_boolean(v))) {
      json_decref(in);
      return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                         "the body, when given, is {\"apps\": true|false}");
    }
    apps = json_is_true(v);
    json_decref(in);
  }
  sim_smsc_reset(h->o.smsc);
  sim_ring_clear(h->o.ring);
  if (h->o.chan) sim_chan_reset(h->o.chan, apps);
  kk_info("http", "counters and submit ring cleared");
  return reply_json(c, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
}

/* ---- the channel paths (sim_chan) ---- */

static void on_timer(uv_timer_t *t);

static void unlink_suspended(struct sim_http *h, struct req *r) {
  if (r->sprev)
    r->sprev->snext = r->snext;
  else
    h->suspended = r->snext;
  if (r->snext) r->snext->sprev = r->sprev;
  r->sprev = r->snext = NULL;
  r->suspended = 0;
}

/* sim_chan's deferred answer: kept, and the connection resumed so that MHD
   calls on_request again to queue it. */
static void on_chan_done(void *ctx, struct sim_chan_reply *rep) {
  struct req *r = ctx;
  r->reply = *rep;
  r->have_reply = 1;
  if (!r->suspended) return;      /* still inside sim_chan_handle */
  struct sim_http *h = r->h;
  unlink_suspended(h, r);
  MHD_resume_connection(r->conn);
  if (!h->closing) uv_timer_start(&h->timer, on_timer, 0, 0);
}

static enum MHD_Result queue_chan_reply(struct MHD_Connection *c, struct req *r) {
  struct sim_chan_reply *rep = &r->reply;
  r->have_reply = 0;
  char *body = rep->body;
  rep->body = NULL;
  return reply(c, rep->status, rep->content_type ? rep->content_type : "application/json", body,
               rep->len);
}

static const char *query_arg(void *ctx, const char *name) {
  return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

/* Returns MHD_YES/MHD_NO, or KK_ENOENT when sim_chan does not serve the path. */
static int route_chan(struct sim_http *h, struct MHD_Connection *c, const char *url,
                      const char *method, struct req *r) {
  if (h->o.chan == NULL) return KK_ENOENT;
  struct sim_chan_req rq = {
    .method = method,
    .path = url,
    .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
    .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
    .viber_token = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Viber-Auth-Token"),
    .body = r->body.p ? r->body.p : "",
    .body_len = r->body.len,
    .query = query_arg,
    .query_ctx = c,
  };
  struct sim_chan_reply out;
  r->h = h;
  r->conn = c;
  r->in_chan = 1;
  enum sim_chan_handled hd = sim_chan_handle(h->o.chan, &rq, &out, on_chan_done, r);
  r->in_chan = 0;
  switch (hd) {
  case SIM_CHAN_NOT_MINE:
    return KK_ENOENT;
  case SIM_CHAN_ANSWERED:
    return reply(c, out.status, out.content_type ? out.content_type : "application/json",
                 out.body, out.len);
  case SIM_CHAN_LATER:
    break;
  }
  if (r->have_reply) return queue_chan_reply(c, r);
  r->suspended = 1;
  r->snext = h->suspended;
  if (h->suspended) h->suspended->sprev = r;
  h->suspended = r;
  MHD_suspend_connection(c);
  return MHD_YES;
}

static enum MHD_Result route(struct sim_http *h, struct MHD_Connection *c, const char *url,
                             const char *method, struct req *r) {
  int get = strcmp(method, "GET") == 0;
  int post = strcmp(method, "POST") == 0;
  if (strcmp(url, "/healthz") == 0 && get)
    return reply(c, MHD_HTTP_OK, "text/plain", kk_xstrdup("ok"), 2);
  if (strcmp(url, "/stats") == 0 && get)
    return reply_json(c, MHD_HTTP_OK, sim_smsc_stats(h->o.smsc));
  if (strcmp(url, "/config") == 0 && get) return get_config(h, c);
  if (strcmp(url, "/config") == 0 && post) return post_config(h, c, r);
  if (strcmp(url, "/submits") == 0 && get) return get_submits(h, c);
  if (strcmp(url, "/mo") == 0 && post) return post_mo(h, c, r);
  if (strcmp(url, "/reset") == 0 && post) return post_reset(h, c, r);
  if (h->o.hlr) {
    unsigned status;
    char *body;
    if (sim_hlr_handle(h->o.hlr, method, url, query_arg(c, "phone"), r->body.p, r->body.len,
                       &status, &body) == 0)
      return reply(c, status, "application/json", body, strlen(body));
  }
  int rc = route_chan(h, c, url, method, r);
  if (rc >= 0) return (enum MHD_Result)rc;
  static const char *const known[] = {"/healthz", "/stats", "/config", "/submits", "/mo",
                                      "/reset"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(url, known[i]) == 0)
      return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                         "this path does not take that method");
  return reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such path");
}

/* Called by MHD first with the headers (a struct req is allocated then and
   freed in on_completed), then with each body chunk, then once more to answer. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
  struct sim_http *h = cls;
  struct req *r = *con_cls;
  if (r != NULL && r->have_reply) return queue_chan_reply(c, r);
  if (r == NULL) {
    r = kk_xcalloc(1, sizeof *r);
    kk_buf_init(&r->body, BODY_MAX);
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    if (!r->too_big && kk_buf_append(&r->body, upload, *upload_size) != 0) r->too_big = 1;
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->too_big)
    return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_big", "the body is over 1 MiB");
  return route(h, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
  struct req *r = *con_cls;
  if (r == NULL) return;
  if (r->suspended) unlink_suspended(r->h, r);
  free(r->reply.body);
  kk_buf_fini(&r->body);
  free(r);
  *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  char line[256];
  vsnprintf(line, sizeof line, fmt, ap);
  kk_warnx("http", "%s", line);
}

/* ---- driving MHD from the loop ---- */

static void run(struct sim_http *h) {
  if (h->closing) return;
  MHD_run(h->daemon);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(h->daemon, &ms) == MHD_YES)
    uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
  else
    uv_timer_stop(&h->timer);
}

static void on_timer(uv_timer_t *t) {
  run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  run(p->data);
}

int sim_http_start(uv_loop_t *loop, const struct sim_http_opts *o, struct sim_http **out) {
  *out = NULL;
  struct sim_http *h = kk_xcalloc(1, sizeof *h);
  h->loop = loop;
  h->o = *o;
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
  if (o->addr->sa_family == AF_INET6) flags |= MHD_USE_IPv6;
  /* The logger comes first so that MHD reports everything through it. */
  h->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
      MHD_OPTION_SOCK_ADDR, o->addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024, /* zeroed per request */
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)30, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
  if (h->daemon == NULL) {
    free(h);
    return KK_EIO;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  if (info == NULL || uv_poll_init(loop, &h->poll, info->epoll_fd) != 0) {
    kk_error("http", "cannot watch the HTTP server's epoll descriptor");
    MHD_stop_daemon(h->daemon);
    free(h);
    return KK_EIO;
  }
  h->poll.data = h;
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  uv_poll_start(&h->poll, UV_READABLE, on_poll);
  run(h);
  *out = h;
  return 0;
}

void sim_http_stop(struct sim_http *h) {
  if (h->closing) return;
  h->closing = 1;
  /* MHD must not be stopped with a suspended connection. sim_chan answers
     every deferred request when it closes, which comes first; one left here
     would be a bug, and is resumed only so that MHD can close it. */
  while (h->suspended) {
    struct req *r = h->suspended;
    kk_warnx("http", "a request still waits for the channel module at shutdown");
    unlink_suspended(h, r);
    MHD_resume_connection(r->conn);
  }
  /* The poll handle must let go of the epoll descriptor before MHD closes it. */
  uv_close((uv_handle_t *)&h->poll, NULL);
  uv_close((uv_handle_t *)&h->timer, NULL);
  MHD_stop_daemon(h->daemon);
  h->daemon = NULL;
}

void sim_http_free(struct sim_http *h) {
  free(h);
}
