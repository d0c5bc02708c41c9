/*
 * sim_post.h - the simulator's sender of status callbacks: small HTTP/1.1
 * requests to plain http:// addresses over kept-alive connections, one
 * request at a time on each, on the libuv loop.
 *
 * The simulator plays every provider at once and calls back at the rate
 * kaskad sends, on the same machine: with libcurl each callback cost about
 * 70 us of CPU once a thousand connections were open (its connection cache
 * is searched per request), a third of the machine in the cascade
 * benchmark. This sender does what a callback needs and no more: write the
 * request, read one response (Content-Length, chunked or to the close), keep
 * the connection. Anything else (https, host names other than localhost)
 * stays with http_client; sim_post_do() says so.
 */
#ifndef SIM_POST_H
#define SIM_POST_H

#include <stddef.h>
#include <uv.h>

#include "http/http_client.h"

struct sim_post;

/* max_body: response bytes kept (0 = 64 KiB); max_conns: connections open at
   once (more requests wait for one). Freed by sim_post_stop(). */
struct sim_post *sim_post_new(uv_loop_t *loop, size_t max_body, int max_conns);

/* Starts a request (method, url, headers, body and timeout_ms are used; the
   timeout counts from the request's start on a connection). cb(arg, resp)
   runs exactly once, later, on the loop. Returns 0, or KK_EINVAL when the URL
   is not one sim_post takes (nothing is started then). */
int sim_post_do(struct sim_post *p, const struct http_client_req *req, http_client_cb cb,
                void *arg);

/* Ends running and waiting requests (their callbacks run with status 0 and
   error "closed"), closes the connections and frees p once they are. */
void sim_post_stop(struct sim_post *p);

#endif
