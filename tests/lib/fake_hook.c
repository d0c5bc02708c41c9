/* fake_hook.c - see fake_hook.h. */
#include "fake_hook.h"

#include <string.h>
#include <strings.h>

static const char *header(void *ctx, const char *name) {
  struct fake_hook *f = ctx;
  for (int i = 0; i < f->nh; i++)
    if (strcasecmp(f->h[i][0], name) == 0) return f->h[i][1];
  return NULL;
}

static const char *query(void *ctx, const char *name) {
  struct fake_hook *f = ctx;
  for (int i = 0; i < f->nq; i++)
    if (strcmp(f->q[i][0], name) == 0) return f->q[i][1];
  return NULL;
}

void fake_hook_header(struct fake_hook *f, const char *name, const char *value) {
  if (f->nh == FAKE_HOOK_MAX) return;
  f->h[f->nh][0] = name;
  f->h[f->nh][1] = value;
  f->nh++;
}

void fake_hook_query(struct fake_hook *f, const char *name, const char *value) {
  if (f->nq == FAKE_HOOK_MAX) return;
  f->q[f->nq][0] = name;
  f->q[f->nq][1] = value;
  f->nq++;
}

struct chan_hook_in fake_hook_in(struct fake_hook *f, const char *method, const char *body,
                                 size_t len, int64_t now_ms) {
  struct chan_hook_in in = {method, body, len, header, query, f, now_ms};
  return in;
}
