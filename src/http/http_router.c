/*
 * http_router.c - route tables matched by method and path (see http_router.h).
 */
#include "http/http_router.h"

#include <stdio.h>
#include <string.h>

#define SEGS_MAX 16   /* segments of a path the router looks at */

const struct http_route *http_router_at(const struct http_router *r, size_t i) {
  return (const struct http_route *)((const char *)r->routes + i * r->size);
}

int http_path_split(const char *path, struct http_seg *segs, int max) {
  int n = 0;
  const char *p = path;
  while (*p == '/') p++;
  while (*p) {
    if (n == max) return -1;
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len >= HTTP_ROUTE_SEG_MAX) return -1;
    segs[n].p = p;
    segs[n].len = len;
    n++;
    if (!e) break;
    p = e + 1;
  }
  return n;
}

/* 1 when the pattern takes the n segments; its parameters go to m. The
   pattern is walked segment by segment, so most patterns are left at
   their first or second segment. */
static int pattern_takes(const char *pattern, const struct http_seg *segs, int n,
                         struct http_match *m) {
  m->nparams = 0;
  const char *p = pattern;
  while (*p == '/') p++;
  int i = 0;
  while (*p) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 1 && p[0] == '*' && !e) return n > i;
    if (i >= n) return 0;
    if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
      if (m->nparams == HTTP_ROUTE_PARAMS) return 0;
      struct http_param *pa = &m->params[m->nparams++];
      pa->name = p + 1;
      pa->name_len = len - 2;
      memcpy(pa->value, segs[i].p, segs[i].len);
      pa->value[segs[i].len] = '\0';
    } else if (len != segs[i].len || memcmp(p, segs[i].p, len) != 0) {
      return 0;
    }
    i++;
    if (!e) break;
    p = e + 1;
  }
  return n == i;
}

/* Adds method to the ", "-separated list (once). */
static void allow_add(char *allow, const char *method) {
  size_t len = strlen(allow), mlen = strlen(method);
  const char *p = allow;
  while ((p = strstr(p, method)) != NULL) {
    if ((p == allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0')) return;
    p += mlen;
  }
  snprintf(allow + len, HTTP_ROUTE_ALLOW - len, "%s%s", len ? ", " : "", method);
}

/* Fills m->allow with the methods of pattern's routes (the 405 only). */
static void allow_of(const struct http_router *r, const char *pattern, struct http_match *m) {
  for (size_t i = (size_t)m->route; i < r->n; i++) {
    const struct http_route *rt = http_router_at(r, i);
    if (strcmp(rt->pattern, pattern) == 0 && strcmp(rt->method, "*") != 0)
      allow_add(m->allow, rt->method);
  }
}

enum http_route_result http_router_match(const struct http_router *r, const char *method,
                                         const char *path, struct http_match *m) {
  m->route = -1;
  m->allow[0] = '\0';
  m->nparams = 0;
  struct http_seg segs[SEGS_MAX];
  int max = r->max_segs > 0 && r->max_segs < SEGS_MAX ? r->max_segs : SEGS_MAX;
  int n = http_path_split(path, segs, max);
  if (n < 0) return HTTP_ROUTE_NO_PATH;
  const char *pattern = NULL;
  for (size_t i = 0; i < r->n; i++) {
    const struct http_route *rt = http_router_at(r, i);
    if (pattern == NULL) {
      if (!pattern_takes(rt->pattern, segs, n, m)) continue;
      pattern = rt->pattern;
      m->route = (int)i;
    } else if (rt->pattern != pattern && strcmp(rt->pattern, pattern) != 0) {
      continue;
    }
    if ((rt->method[0] == '*' && rt->method[1] == '\0') || strcmp(rt->method, method) == 0) {
      m->route = (int)i;
      return HTTP_ROUTE_FOUND;
    }
  }
  if (pattern == NULL) return HTTP_ROUTE_NO_PATH;
  allow_of(r, pattern, m);
  return HTTP_ROUTE_NO_METHOD;
}

const char *http_match_param(const struct http_match *m, const char *name) {
  for (int i = 0; i < m->nparams; i++)
    if (strncmp(m->params[i].name, name, m->params[i].name_len) == 0 &&
        name[m->params[i].name_len] == '\0')
      return m->params[i].value;
  return NULL;
}
