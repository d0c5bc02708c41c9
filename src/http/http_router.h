/*
 * http_router.h - matching a request's method and path against a table of
 * routes (pure: no I/O, no allocation).
 *
 * A pattern is a path of segments: a literal ("messages"), a parameter
 * ("{id}": any one segment, handed back by name), or, last, "*" (one or more
 * further segments). A route's method "*" takes any method and is never
 * named in Allow. Paths are split as the API always has: leading slashes
 * are skipped and a trailing slash is ignored ("/v1/messages/" is
 * "/v1/messages"); an empty segment in the middle is a segment of its own.
 *
 * The routes of a path are those with the pattern of the first route (in
 * table order) that matches it: put literal patterns before the patterns
 * with parameters that would also take them ("/v1/messages/batch" before
 * "/v1/messages/{id}"), and catch-alls last.
 */
#ifndef HTTP_ROUTER_H
#define HTTP_ROUTER_H

#include <stddef.h>

#define HTTP_ROUTE_SEG_MAX 128   /* a segment is shorter than this */
#define HTTP_ROUTE_PARAMS 4
#define HTTP_ROUTE_ALLOW 64

/* The head of a table's element: tables of the caller's own struct type
   begin with it (so the router can step over them by their size). */
struct http_route {
  const char *method;        /* "GET", ... or "*" */
  const char *pattern;       /* e.g. "/v1/messages/{id}" */
};

struct http_router {
  const void *routes;        /* n elements of size bytes, each starting with struct http_route */
  size_t n, size;
  int max_segs;              /* paths with more segments match nothing */
};

enum http_route_result {
  HTTP_ROUTE_FOUND = 0,      /* route: the path's route for the method */
  HTTP_ROUTE_NO_METHOD = 1,  /* route: the path's first route; allow: its methods */
  HTTP_ROUTE_NO_PATH = 2,    /* route: -1 */
};

struct http_match {
  int route;                 /* index in the table, or -1 */
  char allow[HTTP_ROUTE_ALLOW];  /* "GET, POST" when HTTP_ROUTE_NO_METHOD */
  int nparams;
  struct http_param {
    const char *name;        /* in the route's pattern (not NUL-terminated) */
    size_t name_len;
    char value[HTTP_ROUTE_SEG_MAX];
  } params[HTTP_ROUTE_PARAMS];
};

/* Matches method and path; fills m (parameters of the matched pattern). */
enum http_route_result http_router_match(const struct http_router *r, const char *method,
                                         const char *path, struct http_match *m);
/* The value of parameter name in m, or NULL. */
const char *http_match_param(const struct http_match *m, const char *name);
/* The route struct at index i of the table. */
const struct http_route *http_router_at(const struct http_router *r, size_t i);

/* Splits path into at most max segments (pointers into path, with their
   lengths); returns their count, or -1 when there are more, or one is
   HTTP_ROUTE_SEG_MAX bytes or longer. */
struct http_seg {
  const char *p;
  size_t len;
};
int http_path_split(const char *path, struct http_seg *segs, int max);

#endif
