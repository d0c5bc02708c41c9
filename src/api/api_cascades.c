/*
 * api_cascades.c - named cascades of an account in the HTTP API:
 *
 *   PUT/GET/DELETE /v1/cascades[/{name}]
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "cascade/cascade.h"
#include "channel/channel.h"
#include "core/kk_cfg.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_net.h"
#include "core/kk_rate.h"
#include "dispatch/dispatch.h"
#include "http/http_client.h"
#include "http/http_server.h"

#define LOGCTX "api"

/* The cascade's steps as the API shows them (new reference). */
static json_t *steps_json(const char *text) {
  struct store_step st[STORE_MAX_STEPS];
  int n = store_steps_parse(text, st);
  json_t *out = json_array();
  for (int i = 0; i < n; i++) {
    json_t *o = json_pack("{s:s, s:s}", "channel", st[i].channel, "wait", st[i].wait);
    long long ms = st[i].timeout_ms;
    if (ms > 0) {
      char t[32];
      if (ms % 3600000 == 0)
        snprintf(t, sizeof t, "%lldh", ms / 3600000);
      else if (ms % 60000 == 0)
        snprintf(t, sizeof t, "%lldm", ms / 60000);
      else if (ms % 1000 == 0)
        snprintf(t, sizeof t, "%llds", ms / 1000);
      else
        snprintf(t, sizeof t, "%lldms", ms);
      json_object_set_new(o, "timeout", json_string(t));
    }
    json_array_append_new(out, o);
  }
  return out;
}


/* ---- named cascades ------------------------------------------------------------ */

struct casc_list {
  json_t *arr;
};

static void collect_cascade(void *arg, const char *name, const char *steps) {
  struct casc_list *l = arg;
  json_array_append_new(l->arr, json_pack("{s:s, s:o}", "name", name, "steps", steps_json(steps)));
}

struct casc_put {
  struct api *a;
  struct http_req *req;
  char name[64];
  char steps[1024];
  int deleting;
};

static void on_cascade_saved(void *arg, int rc) {
  struct casc_put *p = arg;
  if (rc == KK_ENOSPC)
    api_error(p->req, 422, "too_many_cascades", "name",
              "an account has %d named cascades at most: delete one first", STORE_CASCADES_MAX);
  else if (rc)
    api_error(p->req, 503, "store_unavailable", NULL, "the cascade could not be stored");
  else if (p->deleting)
    api_empty(p->req, 204);
  else
    api_json(p->req, 200, json_pack("{s:s, s:o}", "name", p->name, "steps", steps_json(p->steps)),
             NULL);
  free(p);
}

static int valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 63) return 0;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') return 0;
  return 1;
}

void api_cascades_list(struct api_call *c) {
  struct casc_list l = {json_array()};
  store_cascades_each(c->a->store, c->account_id, collect_cascade, &l);
  api_json(c->req, 200, json_pack("{s:o}", "cascades", l.arr), NULL);
}

/* Before the method: a name to write must be one a cascade may have
   (reads answer 404 for any name without one). */
int api_cascade_check(struct api_call *c) {
  if (strcmp(http_req_method(c->req), "GET") == 0 || valid_name(api_param(c, "name"))) return 0;
  api_error(c->req, 422, "invalid_name", "name", "name: 1 to 63 of A-Z a-z 0-9 _ - .");
  return KK_EINVAL;
}

/* The steps of the account's cascade name (owned by the arena), or NULL
   when there is none. */
static char *cascade_steps(struct api_call *c, const char *name) {
  char *steps = NULL;
  if (store_cascade_get(c->a->store, c->account_id, name, &steps) != 0) return NULL;
  kk_arena_defer(&c->arena, free, steps);
  return steps;
}

void api_cascade_get(struct api_call *c) {
  const char *name = api_param(c, "name");
  const char *steps = cascade_steps(c, name);
  if (!steps) {
    api_error(c->req, 404, "not_found", NULL, "no cascade %s", name);
    return;
  }
  api_json(c->req, 200, json_pack("{s:s, s:o}", "name", name, "steps", steps_json(steps)), NULL);
}

/* A new casc_put for name (freed in on_cascade_saved()). */
static struct casc_put *casc_put_new(struct api_call *c, const char *name) {
  struct casc_put *p = kk_xcalloc(1, sizeof *p);
  p->a = c->a;
  p->req = c->req;
  snprintf(p->name, sizeof p->name, "%s", name);
  return p;
}

void api_cascade_delete(struct api_call *c) {
  const char *name = api_param(c, "name");
  if (!cascade_steps(c, name)) {
    api_error(c->req, 404, "not_found", NULL, "no cascade %s", name);
    return;
  }
  struct casc_put *p = casc_put_new(c, name);
  p->deleting = 1;
  store_cascade_put(c->a->store, c->account_id, name, NULL, on_cascade_saved, p);
}

void api_cascade_put(struct api_call *c) {
  const char *name = api_param(c, "name");
  json_t *doc = api_call_body(c);
  if (!doc) return;
  struct api_err e;
  memset(&e, 0, sizeof e);
  char *steps = kk_arena_alloc(&c->arena, sizeof ((struct casc_put *)0)->steps);
  if (api_cascade_parse(json_object_get(doc, "steps"), steps,
                        sizeof ((struct casc_put *)0)->steps, &e) != 0) {
    if (e.field && strncmp(e.field, "cascade", 7) == 0) {
      char f[48];
      snprintf(f, sizeof f, "steps%.40s", e.field + 7);
      memcpy(e.fieldbuf, f, sizeof f);
      e.field = e.fieldbuf;
    }
    api_error_from(c->req, &e);
    return;
  }
  struct casc_put *p = casc_put_new(c, name);
  memcpy(p->steps, steps, sizeof p->steps);
  store_cascade_put(c->a->store, c->account_id, name, p->steps, on_cascade_saved, p);
}
