/*
 * sim_post.c - status callbacks over kept-alive HTTP/1.1 connections (see
 * sim_post.h).
 *
 * A call is one request; a conn is one TCP connection, which carries one call
 * at a time and waits in the idle list between calls (still reading, so a
 * close by the server is seen). A call that finds no idle connection to its
 * address opens one, or waits in line when max_conns are open. A kept-alive
 * connection the server closed before answering (nothing read yet) is not an
 * error: the call goes again on a new connection, once.
 */
#include "sim_post.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "http/http_resp.h"

#define DEFAULT_MAX_BODY (64 * 1024)
#define DEFAULT_TIMEOUT_MS 10000
#define READ_CHUNK 4096

struct call {
  struct call *next;                 /* in p->waiting */
  struct sockaddr_storage addr;
  char *wire;                        /* the request, head and body; owned */
  size_t wire_len;
  long timeout_ms;
  int again;                         /* 1: already restarted on a new connection */
  http_client_cb cb;
  void *arg;
  /* the answer */
  struct kk_buf in;                  /* bytes of the head read so far */
  int head_done;
  struct http_resp_head head;
  struct kk_buf body;
  long long body_seen;               /* body bytes read (also past the cap) */
  struct http_chunked chunks;
};

struct conn {
  struct sim_post *p;
  struct conn *prev, *next;          /* in p->conns */
  struct conn *idle_next;            /* in p->idle while idle */
  struct sockaddr_storage addr;
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_timer_t timer;
  struct call *call;                 /* the call it carries, or NULL */
  int used;                          /* it has carried a call to its end */
  int writing;                       /* 1: libuv may still read call->wire */
  int closing;
  int open_handles;                  /* tcp and timer, until both are closed */
  char rbuf[READ_CHUNK];
};

struct sim_post {
  uv_loop_t *loop;
  size_t max_body;
  int max_conns, nconns;
  struct conn *conns;
  struct conn *idle;
  struct call *waiting, *waiting_tail;
  int closing;
};

static void conn_start(struct sim_post *p, struct conn *k, struct call *call);
static void conn_close(struct conn *k);

/* ---- calls ------------------------------------------------------------------ */

static void call_free(struct call *call) {
  free(call->wire);
  kk_buf_fini(&call->in);
  kk_buf_fini(&call->body);
  free(call);
}

/* Runs the callback once and frees the call. */
static void call_end(struct call *call, long status, const char *error) {
  struct http_client_resp r;
  memset(&r, 0, sizeof r);
  r.status = status;
  r.body = call->body.p ? call->body.p : "";
  r.body_len = call->body.len;
  r.retry_after = call->head.retry_after[0] ? call->head.retry_after : NULL;
  r.error = error ? error : "";
  call->cb(call->arg, &r);
  call_free(call);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

/* http://host[:port]/path with a numeric host or localhost: the address and
   the path (pointing into url). */
static int parse_url(const char *url, struct sockaddr_storage *addr, const char **path) {
  if (strncasecmp(url, "http://", 7) != 0) return KK_EINVAL;
  const char *h = url + 7, *end = h + strcspn(h, "/?#");
  char host[64];
  int port = 80;
  const char *colon;
  if (*h == '[') {
    const char *close = memchr(h, ']', (size_t)(end - h));
    if (close == NULL || close - h - 1 >= (long)sizeof host) return KK_EINVAL;
    memcpy(host, h + 1, (size_t)(close - h - 1));
    host[close - h - 1] = '\0';
    colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
  } else {
    colon = memchr(h, ':', (size_t)(end - h));
    const char *hend = colon ? colon : end;
    if (hend - h <= 0 || hend - h >= (long)sizeof host) return KK_EINVAL;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
  }
  if (colon) {
    port = 0;
    for (const char *d = colon + 1; d < end; d++) {
      if (*d < '0' || *d > '9' || port > 65535) return KK_EINVAL;
      port = port * 10 + (*d - '0');
    }
    if (port <= 0 || port > 65535) return KK_EINVAL;
  }
  if (strcasecmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
  memset(addr, 0, sizeof *addr);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)addr) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr) != 0)
    return KK_EINVAL;
  *path = *end == '/' ? end : NULL;
  return 0;
}

/* ---- connections ------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  struct conn *k = h->data;
  if (--k->open_handles > 0) return;
  free(k);
}

static void idle_remove(struct conn *k) {
  for (struct conn **pp = &k->p->idle; *pp; pp = &(*pp)->idle_next) {
    if (*pp == k) {
      *pp = k->idle_next;
      k->idle_next = NULL;
      return;
    }
  }
}

/* Starts the first waiting call, on an idle connection to its address or a
   new one, while there is room. */
static void pump(struct sim_post *p) {
  while (p->waiting && !p->closing) {
    struct call *call = p->waiting;
    struct conn *k = NULL;
    for (struct conn **pp = &p->idle; *pp; pp = &(*pp)->idle_next) {
      if (same_addr(&(*pp)->addr, &call->addr)) {
        k = *pp;
        *pp = k->idle_next;
        k->idle_next = NULL;
        break;
      }
    }
    if (k == NULL && p->nconns >= p->max_conns) {
      if (p->idle == NULL) return;          /* every connection is busy */
      struct conn *old = p->idle;           /* one to another address makes room */
      idle_remove(old);
      conn_close(old);
    }
    p->waiting = call->next;
    if (p->waiting == NULL) p->waiting_tail = NULL;
    call->next = NULL;
    conn_start(p, k, call);
  }
}

static void enqueue(struct sim_post *p, struct call *call, int front) {
  if (front) {
    call->next = p->waiting;
    p->waiting = call;
    if (p->waiting_tail == NULL) p->waiting_tail = call;
  } else {
    call->next = NULL;
    if (p->waiting_tail)
      p->waiting_tail->next = call;
    else
      p->waiting = call;
    p->waiting_tail = call;
  }
}

static void conn_close(struct conn *k) {
  if (k->closing) return;
  k->closing = 1;
  struct sim_post *p = k->p;
  if (k->prev)
    k->prev->next = k->next;
  else
    p->conns = k->next;
  if (k->next) k->next->prev = k->prev;
  p->nconns--;
  uv_close((uv_handle_t *)&k->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&k->timer, on_handle_closed);
}

/* The connection failed under its call: the call goes again on a new
   connection when this one was kept alive and answered nothing, else it ends
   with error. The connection is closed. */
static void conn_fail(struct conn *k, const char *error) {
  struct call *call = k->call;
  k->call = NULL;
  struct sim_post *p = k->p;
  conn_close(k);
  if (call) {
    int nothing_read = call->in.len == 0 && !call->head_done;
    if (k->used && nothing_read && !call->again && !p->closing) {
      call->again = 1;
      enqueue(p, call, 1);
    } else {
      call_end(call, 0, error);
    }
  }
  pump(p);
}

/* The call's answer is complete: it ends, the connection goes back to the
   idle list (or closes, when the server said so or sent more than asked). */
static void conn_done(struct conn *k, int reusable) {
  struct call *call = k->call;
  k->call = NULL;
  k->used = 1;
  uv_timer_stop(&k->timer);
  struct sim_post *p = k->p;
  /* An answer can come before the whole request is written (a server that
     refuses early): closing the socket is what stops libuv reading the
     request the call frees. */
  if (!reusable || call->head.close || p->closing || k->writing) {
    conn_close(k);
  } else {
    k->idle_next = p->idle;
    p->idle = k;
  }
  call_end(call, call->head.status, NULL);
  pump(p);
}

static void on_timeout(uv_timer_t *t) { conn_fail(t->data, "timed out"); }

/* Body bytes of a framed (Content-Length) answer. */
static void take_body(struct conn *k, const char *data, size_t n) {
  struct call *call = k->call;
  long long want = call->head.content_length - call->body_seen;
  size_t use = (long long)n < want ? n : (size_t)want;
  if (call->body.len + use <= call->body.max) kk_buf_append(&call->body, data, use);
  call->body_seen += (long long)use;
  if (call->body_seen == call->head.content_length) conn_done(k, use == n);
}

/* Feeds what arrived to the call's answer. */
static void got_bytes(struct conn *k, const char *data, size_t n) {
  struct call *call = k->call;
  while (!call->head_done) {
    if (n && kk_buf_append(&call->in, data, n) != 0) {
      conn_fail(k, "the answer's head is too long");
      return;
    }
    data = NULL;
    n = 0;
    long used = http_resp_head_parse(call->in.p, call->in.len, &call->head);
    if (used < 0) {
      conn_fail(k, "the answer is not HTTP/1.x");
      return;
    }
    if (used == 0) return;
    if (call->head.status < 200) {            /* 100 Continue and the like */
      kk_buf_consume(&call->in, (size_t)used);
      if (call->in.len == 0) return;
      continue;
    }
    call->head_done = 1;
    if (call->head.status == 204 || call->head.status == 304) call->head.content_length = 0;
    /* the rest of what was read is body: fed below from a copy */
    size_t rest = call->in.len - (size_t)used;
    if (rest == 0) {
      if (call->head.content_length == 0) conn_done(k, 1);
      return;
    }
    char *copy = kk_xmalloc(rest);
    memcpy(copy, call->in.p + used, rest);
    got_bytes(k, copy, rest);
    free(copy);
    return;
  }
  if (call->head.chunked) {
    int done = 0;
    long used = http_chunked_feed(&call->chunks, data, n, &call->body, &done);
    if (used < 0)
      conn_fail(k, "the answer's chunked body is malformed or too long");
    else if (done)
      conn_done(k, (size_t)used == n);
  } else if (call->head.content_length >= 0) {
    take_body(k, data, n);
  } else if (call->body.len + n <= call->body.max) {
    kk_buf_append(&call->body, data, n);      /* up to the close */
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct conn *k = h->data;
  buf->base = k->rbuf;
  buf->len = sizeof k->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *k = s->data;
  if (k->closing || nread == 0) return;
  if (k->call == NULL) {                      /* idle: closed by the server, or junk */
    idle_remove(k);
    conn_close(k);
    return;
  }
  if (nread < 0) {
    struct call *call = k->call;
    if (nread == UV_EOF && call->head_done && !call->head.chunked &&
        call->head.content_length < 0) {
      conn_done(k, 0);                        /* a body that ends with the connection */
      return;
    }
    conn_fail(k, nread == UV_EOF ? "the server closed the connection" : uv_strerror((int)nread));
    return;
  }
  got_bytes(k, buf->base, (size_t)nread);
}

static void on_written(uv_write_t *w, int status) {
  struct conn *k = w->data;
  k->writing = 0;
  if (status < 0 && !k->closing) conn_fail(k, uv_strerror(status));
}

static void send_call(struct conn *k) {
  uv_buf_t b = uv_buf_init(k->call->wire, (unsigned)k->call->wire_len);
  k->write.data = k;
  int rc = uv_write(&k->write, (uv_stream_t *)&k->tcp, &b, 1, on_written);
  if (rc < 0)
    conn_fail(k, uv_strerror(rc));
  else
    k->writing = 1;
}

static void on_connected(uv_connect_t *req, int status) {
  struct conn *k = req->data;
  if (k->closing) return;
  if (status < 0) {
    conn_fail(k, uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&k->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
  if (rc < 0) {
    conn_fail(k, uv_strerror(rc));
    return;
  }
  send_call(k);
}

/* Carries call on k, or on a new connection when k is NULL. */
static void conn_start(struct sim_post *p, struct conn *k, struct call *call) {
  if (k == NULL) {
    /* Freed in on_handle_closed() once both of its handles are closed. */
    k = kk_xcalloc(1, sizeof *k);
    k->p = p;
    k->addr = call->addr;
    uv_tcp_init(p->loop, &k->tcp);
    uv_timer_init(p->loop, &k->timer);
    k->tcp.data = k->timer.data = k->connect.data = k;
    k->open_handles = 2;
    k->next = p->conns;
    if (p->conns) p->conns->prev = k;
    p->conns = k;
    p->nconns++;
    k->call = call;
    uv_timer_start(&k->timer, on_timeout, (uint64_t)call->timeout_ms, 0);
    int rc = uv_tcp_connect(&k->connect, &k->tcp, (const struct sockaddr *)&k->addr, on_connected);
    if (rc < 0) conn_fail(k, uv_strerror(rc));
    return;
  }
  k->call = call;
  uv_timer_start(&k->timer, on_timeout, (uint64_t)call->timeout_ms, 0);
  send_call(k);
}

/* ---- API ----------------------------------------------------------------------- */

struct sim_post *sim_post_new(uv_loop_t *loop, size_t max_body, int max_conns) {
  /* Freed by sim_post_stop(). */
  struct sim_post *p = kk_xcalloc(1, sizeof *p);
  p->loop = loop;
  p->max_body = max_body ? max_body : DEFAULT_MAX_BODY;
  p->max_conns = max_conns > 0 ? max_conns : 1;
  return p;
}

int sim_post_do(struct sim_post *p, const struct http_client_req *req, http_client_cb cb,
                void *arg) {
  struct sockaddr_storage addr;
  const char *path = NULL;
  if (p->closing || req->url == NULL || cb == NULL || parse_url(req->url, &addr, &path) != 0)
    return KK_EINVAL;
  /* Freed by call_end(). */
  struct call *call = kk_xcalloc(1, sizeof *call);
  call->addr = addr;
  call->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
  call->cb = cb;
  call->arg = arg;
  kk_buf_init(&call->in, HTTP_RESP_HEAD_MAX);
  kk_buf_init(&call->body, p->max_body);
  const char *host = req->url + 7;
  size_t hostlen = strcspn(host, "/?#");
  struct kk_buf w;
  kk_buf_init(&w, (size_t)64 << 20);
  int bad = kk_buf_printf(&w, "%s %s%s HTTP/1.1\r\nHost: %.*s\r\n",
                          req->method ? req->method : "GET", path ? "" : "/",
                          path ? path : host + hostlen, (int)hostlen, host);
  for (int i = 0; i < req->nheaders && !bad; i++)
    bad = kk_buf_printf(&w, "%s\r\n", req->headers[i]);
  if (!bad && (req->body || (req->method && strcmp(req->method, "GET") != 0)))
    bad = kk_buf_printf(&w, "Content-Length: %zu\r\n", req->body ? req->body_len : 0);
  if (!bad) bad = kk_buf_append(&w, "\r\n", 2);
  if (!bad && req->body && req->body_len) bad = kk_buf_append(&w, req->body, req->body_len);
  if (bad) {
    kk_buf_fini(&w);
    call_free(call);
    return KK_EINVAL;
  }
  call->wire = kk_buf_take(&w, &call->wire_len);
  enqueue(p, call, 0);
  pump(p);
  return 0;
}

void sim_post_stop(struct sim_post *p) {
  if (p == NULL) return;
  p->closing = 1;
  while (p->waiting) {
    struct call *call = p->waiting;
    p->waiting = call->next;
    call_end(call, 0, "closed");
  }
  p->waiting_tail = NULL;
  while (p->conns) {
    struct conn *k = p->conns;
    struct call *call = k->call;
    k->call = NULL;
    conn_close(k);
    if (call) call_end(call, 0, "closed");
  }
  free(p);
}
