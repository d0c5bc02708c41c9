/*
 * http_server.h - the inbound HTTP server: libmicrohttpd driven from the
 * libuv loop (MHD's epoll fd is watched with uv_poll; no MHD threads).
 *
 * A request is handed to the handler once its whole body has arrived (bodies
 * over max_body get 413 without calling the handler). The handler answers at
 * once or later (after a store commit) with http_respond(); until then the
 * connection is suspended. Every request is answered exactly once.
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_server;
struct http_req;

typedef void (*http_handler_fn)(void *ud, struct http_req *req);
/* Called once a request's headers are known and before its body is read.
   Answering there (http_respond) refuses the request: its body is never
   read and the connection closes after the answer. */
typedef void (*http_precheck_fn)(void *ud, struct http_req *req);

struct http_server_opts {
  const char *host;          /* numeric IPv4 address, e.g. "127.0.0.1" */
  int port;                  /* 0: any free port (see http_server_port) */
  size_t max_body;           /* bytes; larger bodies get 413 */
  int conn_timeout_s;        /* a request must arrive whole within this (also the
                                idle timeout between keep-alive requests) */
  int max_conns;
  int max_conns_per_ip;      /* 0: no limit */
  http_precheck_fn precheck; /* NULL: none; called with the handler's ud */
  /* HTTPS: the certificate (chain) and private key as PEM text, both or
     neither (NULL: plain HTTP). Copied; see http_tls.h for reading them. */
  const char *tls_cert_pem;
  const char *tls_key_pem;
  int listener;              /* a tag the handler reads with http_req_listener() */
};

/* A server with opts (copied), not listening yet; never NULL. */
struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_opts *opts,
                                    http_handler_fn handler, void *ud);
/* Starts listening. Returns 0, KK_EINVAL (a bad address, or HTTPS without
   TLS support) or KK_EIO (logged); a server that did not start is freed
   with http_server_free(). */
int http_server_start(struct http_server *srv);
int http_server_port(const struct http_server *srv);
/* Stops accepting new connections; requests in progress may still finish. */
void http_server_quiesce(struct http_server *srv);
/* Requests waiting for http_respond(). */
int http_server_inflight(const struct http_server *srv);
/* Closes everything and frees srv once its handles are closed (run the loop).
   Only for a started server. */
void http_server_stop(struct http_server *srv);
/* Frees a server that was never started (or did not start); NULL is fine. */
void http_server_free(struct http_server *srv);

/* Request accessors (valid until http_respond). */
const char *http_req_method(const struct http_req *req);
const char *http_req_path(const struct http_req *req);
/* A header value or NULL. */
const char *http_req_header(const struct http_req *req, const char *name);
/* A query argument or NULL. */
const char *http_req_query(const struct http_req *req, const char *name);
const char *http_req_body(const struct http_req *req, size_t *len);
/* Calls fn for every header (query argument), in the order received, until fn
   returns nonzero; returns that value or 0. A query argument without '=' has
   a NULL value. */
typedef int (*http_kv_fn)(void *arg, const char *name, const char *value);
int http_req_each_header(const struct http_req *req, http_kv_fn fn, void *arg);
int http_req_each_query(const struct http_req *req, http_kv_fn fn, void *arg);
/* The opts.listener tag of the server the request came to. */
int http_req_listener(const struct http_req *req);
/* A slot for the handler's own state. */
void http_req_set_data(struct http_req *req, void *data);
void *http_req_data(const struct http_req *req);
/*
 * The request's end: fn(arg, req) runs once, when the request is freed,
 * whether it was answered and sent, or its client went away (a request
 * that is never handled, refused by the pre-check, cut off mid-body, ends
 * too). The request is still readable during the call; it must not be
 * answered there. One hook per request: a second call replaces the first.
 * Whatever lives as long as the request (the handler's state) is freed
 * there.
 */
typedef void (*http_req_end_fn)(void *arg, struct http_req *req);
void http_req_on_end(struct http_req *req, http_req_end_fn fn, void *arg);
/*
 * A streamed body, set by the pre-check for a route that takes large
 * bodies: the body is not kept (http_req_body answers ""); each piece goes
 * to fn(arg, p, n) as it arrives, on the loop thread, up to max bytes in
 * all (over it: 413 without calling the handler). fn returns 0, or nonzero
 * when it could not keep the piece: the rest goes nowhere and
 * http_req_body_failed says so to the handler, which runs at the end as
 * for any request. Each piece moves the connection's deadline on. A local
 * request's body goes to fn at once.
 */
typedef int (*http_body_fn)(void *arg, const char *p, size_t n);
void http_req_stream_body(struct http_req *req, size_t max, http_body_fn fn, void *arg);
int http_req_body_failed(const struct http_req *req);
/* Bytes of the body received (streamed or kept). */
size_t http_req_body_len(const struct http_req *req);
/* A value the pre-check leaves for the handler (0 until set). */
void http_req_set_checked(struct http_req *req, int64_t v);
int64_t http_req_checked(const struct http_req *req);

/*
 * Answers the request: status, content type and body (copied). May be called
 * from the handler or later from any loop callback. extra_headers is NULL or
 * "Name: value\r\n..." lines.
 */
void http_respond(struct http_req *req, int status, const char *content_type,
                  const char *body, size_t len, const char *extra_headers);

/* Answers with size bytes of fd from its start (a file the answer streams
   from, however large); fd is closed once sent (or at once if the request
   was answered already). */
void http_respond_fd(struct http_req *req, int status, const char *content_type, int fd,
                     uint64_t size, const char *extra_headers);

/*
 * Local requests: a request made without a socket, for unit tests and the
 * request handler's fuzz target. The accessors above work on it as on a real
 * one, and http_respond() hands the answer to done instead of a connection.
 */
struct http_local_answer {
  int status;
  const char *content_type;  /* NULL: none */
  const char *headers;       /* "Name: value\r\n" lines, "" when none */
  const char *body;
  size_t len;
};
/* Runs at the first http_respond(); ans and its strings live during the call. */
typedef void (*http_local_fn)(void *ud, const struct http_local_answer *ans);

/*
 * Makes a request; path is as the server would see it (%-escapes decoded);
 * query and headers are arrays of nquery / nheaders name, value pairs
 * (a query value may be NULL). Everything is copied. The caller frees the
 * request with http_local_free() once it has been answered (or to abandon it).
 */
struct http_req *http_local_new(const char *method, const char *path,
                                const char *const *query, int nquery,
                                const char *const *headers, int nheaders,
                                const char *body, size_t len, http_local_fn done, void *ud);
/* How many times http_respond() was called on it (every call after the first
   is ignored, as on a connection). */
int http_local_answers(const struct http_req *req);
void http_local_free(struct http_req *req);

#endif
