/*
 * sim_vk.c - the fake VK API: messages.send and execute, with the Callback API
 * events.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/kk_buf.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "http/http_client.h"
#include "sim_chan_int.h"
#include "sim_knobs.h"
#include "sim_post.h"
#include "sim_rng.h"

/* ---- VK ---- */

/*
 * messages.send, and execute running up to VK_EXECUTE_MAX messages.send
 * calls in one request. Each call goes through vk_call, alone or in a batch:
 * the same random_id dedupe, drawn errors, reach and read callback, and each
 * call counts in /channels/stats as one messages.send request would. An
 * execute is recorded in the ring once: as "accepted" when its calls ran
 * (their outcomes are in the answer and the counters), else with the outcome
 * that refused it as a whole (a bad token, bad code, or the server_error
 * draw, made once per request), which is counted once.
 */

#define VK_ERR(code, msg) "{\"error\":{\"error_code\":" #code ",\"error_msg\":\"" msg "\"}}"
#define VK_EXECUTE_MAX 25                 /* API calls one execute may make */
#define VK_MSG_AUTH "User authorization failed: invalid access_token"
#define VK_MSG_PARAM "One of the parameters specified was missing or invalid"
#define VK_MSG_INTERNAL "Internal server error"
#define VK_MSG_COMPILE "Unable to compile code"
#define VK_MSG_TOO_MANY "Runtime error occurred during code invocation: too many API calls"

static const char *const vk_q[] = {"access_token", "v", "peer_id", "user_id", "random_id",
                                   "message", "attachment", "intent", "keyboard", NULL};
static const char *const vk_execute_q[] = {"access_token", "v", "code", NULL};

/* What one messages.send call came to. */
struct vk_result {
  enum outcome o;
  uint64_t id;                        /* the message id, when accepted or a duplicate */
  int code;                           /* otherwise VK's error code ... */
  const char *msg;                    /* ... and error_msg (static) */
};

static int vk_ok(const struct vk_result *r) {
  return r->o == OUT_ACCEPTED || r->o == OUT_DUPLICATE;
}

static void vk_result_set(struct vk_result *r, enum outcome o, uint64_t id, int code,
                          const char *msg) {
  r->o = o;
  r->id = id;
  r->code = code;
  r->msg = msg;
}

/* The app whose token the request carries (access_token, else a Bearer
   Authorization header), or NULL. p may be NULL. */
static struct capp *vk_app(const struct sim_chan *ch, const struct sim_chan_req *rq,
                           const json_t *p) {
  const char *token = p ? chan_pstr(p, "access_token") : NULL;
  if (token == NULL) token = chan_bearer(rq->authorization);
  return app_find(ch, SIM_CH_VK, token);
}

/* Queues the message_read event of message id when the app has a callback
   URL and the recipient (addr: peer as text) is one who reads. */
static void vk_read_callback(struct sim_chan *ch, const struct capp *app, int64_t peer,
                             const char *addr, uint64_t id) {
  const int c = SIM_CH_VK;
  const struct sim_chan_knobs *k = &ch->knobs[c];
  if (app->callback_url[0] == '\0' || !chan_hashed_hit(ch, "read", c, addr, k->read)) return;
  int64_t delay = chan_draw_ms(ch, k->deliver_ms) + chan_draw_ms(ch, k->read_ms);
  struct jw cb;
  jw_init(&cb, REPLY_MAX);
  jw_fmt(&cb,
         "{\"type\":\"message_read\",\"object\":{\"from_id\":%" PRId64 ",\"peer_id\":%" PRId64
         ",\"read_message_id\":%" PRIu64 "},\"group_id\":%" PRId64
         ",\"event_id\":\"%016" PRIx64 "%016" PRIx64 "\",\"v\":\"" VK_API_VERSION "\"",
         peer, peer, id, app->group_id, sim_rng_next(&ch->rng), sim_rng_next(&ch->rng));
  if (app->secret[0]) {
    jw_lit(&cb, ",\"secret\":");
    jw_cstr(&cb, app->secret);
  }
  jw_raw(&cb, "}", 1);
  if (cb.rc == 0) cb_add(ch, c, SIG_NONE, NULL, 0, app->callback_url, cb.b.p, cb.b.len, delay);
  kk_buf_fini(&cb.b);
}

/*
 * One messages.send call of app with parameters p (NULL: unreadable), into
 * *r: the random_id dedupe, then the drawn errors (HTTP 500 under the share
 * server_error, the knob for messages.send and 0 inside an execute, which
 * draws it for the whole request; the rate-limit error under the throttle
 * knob) and reach; an accepted message gets its id and maybe a read callback.
 * Counts the message but not the request: the caller counts r->o.
 */
static void vk_call(struct sim_chan *ch, struct capp *app, const json_t *p, double server_error,
                    struct vk_result *r) {
  const int c = SIM_CH_VK;
  const struct sim_chan_knobs *k = &ch->knobs[c];
  int64_t peer = 0, rid = 0;
  const char *msg = p ? chan_pstr(p, "message") : NULL;
  if ((msg == NULL || *msg == '\0') && p) msg = chan_pstr(p, "attachment");
  if (p == NULL || (chan_pint(p, "peer_id", &peer) != 0 && chan_pint(p, "user_id", &peer) != 0) ||
      chan_pint(p, "random_id", &rid) != 0 || msg == NULL || *msg == '\0') {
    vk_result_set(r, OUT_BAD_REQUEST, 0, 100, VK_MSG_PARAM);
    return;
  }
  uint64_t key =
      chan_nonzero(chan_mix64((uint64_t)peer * 0x9E3779B97F4A7C15ull ^ chan_mix64((uint64_t)rid)));
  uint64_t seen = dedup_get(app, key);
  if (seen) {
    vk_result_set(r, OUT_DUPLICATE, seen, 0, NULL);
    return;
  }
  if (chan_rng_hit(ch, server_error)) {
    vk_result_set(r, OUT_SERVER_ERROR, 0, 10, VK_MSG_INTERNAL);
    return;
  }
  if (chan_rng_hit(ch, k->throttle)) {
    vk_result_set(r, OUT_THROTTLED, 0, 9, "Flood control");
    return;
  }
  char addr[24];
  snprintf(addr, sizeof addr, "%" PRId64, peer);
  if (!chan_hashed_hit(ch, "reach", c, addr, k->reach)) {
    vk_result_set(r, OUT_UNREACHED, 0, 901, "Can't send messages for users without permission");
    return;
  }
  vk_result_set(r, OUT_ACCEPTED, ++app->next_id, 0, NULL);
  dedup_put(app, key, r->id);
  ch->stats[c].messages++;
  if (!chan_rng_hit(ch, k->fail)) vk_read_callback(ch, app, peer, addr, r->id);
}

static enum sim_chan_handled vk_send(struct sim_chan *ch, const struct sim_chan_req *rq,
                                     struct sim_chan_reply *out) {
  const int c = SIM_CH_VK;
  json_t *p = chan_req_params(rq, vk_q);
  struct capp *app = vk_app(ch, rq, p);
  if (app == NULL) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 200, VK_ERR(5, VK_MSG_AUTH));
  }
  struct vk_result r;
  vk_call(ch, app, p, ch->knobs[c].server_error, &r);
  json_decref(p);
  struct jw w;
  jw_init(&w, REPLY_MAX);
  if (vk_ok(&r)) {
    jw_fmt(&w, "{\"response\":%" PRIu64 "}", r.id);
  } else {
    jw_fmt(&w, "{\"error\":{\"error_code\":%d,\"error_msg\":", r.code);
    jw_cstr(&w, r.msg);
    jw_lit(&w, "}}");
  }
  return chan_finish(ch, rq, c, r.o, out, r.o == OUT_SERVER_ERROR ? 500 : 200, &w);
}

/* ---- VK execute: the code ---- */

/* The calls of an execute's code. */
struct vk_script {
  json_t *call[VK_EXECUTE_MAX];       /* each call's parameters; owned */
  size_t n;                           /* calls in the code; past VK_EXECUTE_MAX, not kept */
};

static void script_fini(struct vk_script *sc) {
  for (size_t i = 0; i < sc->n && i < VK_EXECUTE_MAX; i++) json_decref(sc->call[i]);
  sc->n = 0;
}

static const char *skip_ws(const char *s, const char *end) {
  while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) s++;
  return s;
}

/* Skips whitespace, then lit; returns 1 when lit was there (*s moved past
   it), else 0 (*s unchanged). */
static int script_take(const char **s, const char *end, const char *lit) {
  const char *p = skip_ws(*s, end);
  size_t n = strlen(lit);
  if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0) return 0;
  *s = p + n;
  return 1;
}

/* Reads the JSON object after whitespace at *s and moves *s past it.
   Returns a new reference, or NULL when there is no well-formed object. */
static json_t *script_object(const char **s, const char *end) {
  const char *p = skip_ws(*s, end);
  if (p == end || *p != '{') return NULL;
  json_error_t err;
  json_t *o = json_loadb(p, (size_t)(end - p), JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
                         &err);
  /* Without the EOF check, err.position is where the object ended. */
  if (!json_is_object(o) || err.position <= 0 || (size_t)err.position > (size_t)(end - p)) {
    json_decref(o);
    return NULL;
  }
  *s = p + err.position;
  return o;
}

/* Reads one "API.messages.send({...})" at *s into sc; returns 1 when
   there was one, else 0. */
static int script_call(const char **s, const char *end, struct vk_script *sc) {
  json_t *o = NULL;
  if (!script_take(s, end, "API.messages.send") || !script_take(s, end, "(") ||
      (o = script_object(s, end)) == NULL || !script_take(s, end, ")")) {
    json_decref(o);
    return 0;
  }
  if (sc->n < VK_EXECUTE_MAX)
    sc->call[sc->n] = o;
  else
    json_decref(o);
  sc->n++;
  return 1;
}

/*
 * Compiles code[0..len): "return [API.messages.send({...}),...];" with 1 or
 * more calls, whitespace allowed between the parts, each {...} a JSON object.
 * Returns 0 with sc holding the calls (release them with script_fini), or
 * VK's error code with sc empty: 12 when the code is not of that shape, 13
 * when it makes more than VK_EXECUTE_MAX calls.
 */
static int script_parse(const char *code, size_t len, struct vk_script *sc) {
  const char *s = code, *end = code + len;
  memset(sc, 0, sizeof *sc);
  int ok = script_take(&s, end, "return") && script_take(&s, end, "[") &&
           script_call(&s, end, sc);
  while (ok && script_take(&s, end, ",")) ok = script_call(&s, end, sc);
  ok = ok && script_take(&s, end, "]") && script_take(&s, end, ";") && skip_ws(s, end) == end;
  int rc = !ok ? 12 : sc->n > VK_EXECUTE_MAX ? 13 : 0;
  if (rc) script_fini(sc);
  return rc;
}

/* ---- VK execute: the request ---- */

/* Answers an execute refused as a whole with VK's error (request_params
   included), recorded and counted once under outcome o. */
static enum sim_chan_handled vk_execute_error(struct sim_chan *ch, const struct sim_chan_req *rq,
                                              const json_t *p, enum outcome o, unsigned status,
                                              int code, const char *msg,
                                              struct sim_chan_reply *out) {
  const char *v = p ? chan_pstr(p, "v") : NULL;
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w, "{\"error\":{\"error_code\":%d,\"error_msg\":", code);
  jw_cstr(&w, msg);
  jw_lit(&w, ",\"request_params\":[{\"key\":\"method\",\"value\":\"execute\"},"
             "{\"key\":\"oauth\",\"value\":\"1\"}");
  if (v) {
    jw_lit(&w, ",{\"key\":\"v\",\"value\":");
    jw_cstr(&w, v);
    jw_raw(&w, "}", 1);
  }
  jw_lit(&w, "]}}");
  return chan_finish(ch, rq, SIM_CH_VK, o, out, status, &w);
}

/* Runs the calls of sc (released here), each counted as one messages.send,
   and answers {"response":[id|false,...],"execute_errors":[...]}. */
static enum sim_chan_handled vk_execute_run(struct sim_chan *ch, const struct sim_chan_req *rq,
                                            struct capp *app, struct vk_script *sc,
                                            struct sim_chan_reply *out) {
  const int c = SIM_CH_VK;
  struct vk_result r[VK_EXECUTE_MAX];
  size_t n = sc->n;
  for (size_t i = 0; i < n; i++) {
    vk_call(ch, app, sc->call[i], 0, &r[i]);
    ch->stats[c].n[r[i].o]++;
  }
  script_fini(sc);
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_lit(&w, "{\"response\":[");
  for (size_t i = 0; i < n; i++) {
    if (i) jw_raw(&w, ",", 1);
    if (vk_ok(&r[i]))
      jw_fmt(&w, "%" PRIu64, r[i].id);
    else
      jw_lit(&w, "false");
  }
  jw_raw(&w, "]", 1);
  size_t nerr = 0;
  for (size_t i = 0; i < n; i++) {
    if (vk_ok(&r[i])) continue;
    jw_lit(&w, nerr++ ? "," : ",\"execute_errors\":[");
    jw_fmt(&w, "{\"method\":\"messages.send\",\"error_code\":%d,\"error_msg\":", r[i].code);
    jw_cstr(&w, r[i].msg);
    jw_raw(&w, "}", 1);
  }
  jw_lit(&w, nerr ? "]}" : "}");
  ring_record(ch, rq, c, OUT_ACCEPTED);
  return chan_give(out, 200, &w);
}

/* An execute with parameters p (borrowed; NULL when unreadable): the token,
   then the code, then the server_error draw (once for the whole request),
   then the calls. */
static enum sim_chan_handled vk_execute_params(struct sim_chan *ch, const struct sim_chan_req *rq,
                                               const json_t *p, struct sim_chan_reply *out) {
  struct capp *app = vk_app(ch, rq, p);
  if (app == NULL)
    return vk_execute_error(ch, rq, p, OUT_UNAUTHORIZED, 200, 5, VK_MSG_AUTH, out);
  const json_t *code = p ? json_object_get(p, "code") : NULL;
  if (!json_is_string(code))
    return vk_execute_error(ch, rq, p, OUT_BAD_REQUEST, 200, 100,
                            VK_MSG_PARAM ": code is undefined", out);
  struct vk_script sc;
  int rc = script_parse(json_string_value(code), json_string_length(code), &sc);
  if (rc)
    return vk_execute_error(ch, rq, p, OUT_BAD_REQUEST, 200, rc,
                            rc == 13 ? VK_MSG_TOO_MANY : VK_MSG_COMPILE, out);
  if (chan_rng_hit(ch, ch->knobs[SIM_CH_VK].server_error)) {
    script_fini(&sc);
    return vk_execute_error(ch, rq, p, OUT_SERVER_ERROR, 500, 10, VK_MSG_INTERNAL, out);
  }
  return vk_execute_run(ch, rq, app, &sc, out);
}

static enum sim_chan_handled vk_execute(struct sim_chan *ch, const struct sim_chan_req *rq,
                                        struct sim_chan_reply *out) {
  json_t *p = chan_req_params(rq, vk_execute_q);
  enum sim_chan_handled h = vk_execute_params(ch, rq, p, out);
  json_decref(p);
  return h;
}

/* /method/<name>: messages.send and execute. */
/* POST /vk/inbound {"token","user_id","text"}: a person (a VK user id, a
   positive number) writes to the community; its message_new event (API
   5.199: object.message and object.client_info, with the group_id, an
   event_id and the secret as the Callback API sends them) goes to the app's
   callback URL, and kaskad's answer comes back. */
enum sim_chan_handled sim_vk_inbound(struct sim_chan *ch, const struct sim_chan_req *rq,
                                     struct sim_chan_reply *out, sim_chan_done_fn done,
                                     void *ctx) {
  const int c = SIM_CH_VK;
  json_t *in = chan_body_json(rq);
  const char *token = chan_pstr(in, "token");
  const char *text = chan_pstr(in, "text");
  int64_t user = 0;
  if (!json_is_object(in) || token == NULL || text == NULL ||
      chan_pint(in, "user_id", &user) != 0 || user <= 0) {
    json_decref(in);
    return chan_ctl_error(out, 400, "bad_request",
                          "token and text are required strings, user_id a positive number");
  }
  struct capp *app = app_find(ch, c, token);
  if (app == NULL || app->callback_url[0] == '\0') {
    json_decref(in);
    return chan_ctl_error(out, app ? 409 : 404, app ? "no_callback" : "no_app",
                          app ? "the community has no callback URL set"
                              : "no vk app has that token");
  }
  uint64_t id = ++app->next_id;
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"type\":\"message_new\",\"object\":{\"message\":{\"date\":%" PRId64
         ",\"from_id\":%" PRId64 ",\"id\":%" PRIu64 ",\"out\":0,\"peer_id\":%" PRId64
         ",\"conversation_message_id\":%" PRIu64 ",\"attachments\":[],\"text\":",
         chan_wall_ms() / 1000, user, id, user, id);
  jw_cstr(&w, text);
  jw_fmt(&w,
         "},\"client_info\":{\"button_actions\":[\"text\",\"open_link\",\"callback\"],"
         "\"keyboard\":true,\"inline_keyboard\":true,\"carousel\":true,\"lang_id\":0}},"
         "\"group_id\":%" PRId64 ",\"event_id\":\"%016" PRIx64 "%016" PRIx64
         "\",\"v\":\"" VK_API_VERSION "\"",
         app->group_id, sim_rng_next(&ch->rng), sim_rng_next(&ch->rng));
  if (app->secret[0]) {
    jw_lit(&w, ",\"secret\":");
    jw_cstr(&w, app->secret);
  }
  jw_raw(&w, "}", 1);
  json_decref(in);
  const char *hdr[1] = {"Content-Type: application/json"};
  struct op *op = op_new(OP_USER_MESSAGE, c, app->token);
  snprintf(op->msgid, sizeof op->msgid, "%" PRIu64, id);
  enum sim_chan_handled h =
      op_start(ch, op, "POST", app->callback_url, hdr, 1, w.b.p, w.b.len, out, done, ctx);
  kk_buf_fini(&w.b);
  return h;
}

enum sim_chan_handled sim_vk_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                    struct sim_chan_reply *out) {
  if (strcmp(rq->path, "/method/messages.send") == 0) return vk_send(ch, rq, out);
  if (strcmp(rq->path, "/method/execute") == 0) return vk_execute(ch, rq, out);
  return chan_finish_lit(ch, rq, SIM_CH_VK, OUT_NOT_FOUND, out, 200,
                    VK_ERR(3, "Unknown method passed"));
}

