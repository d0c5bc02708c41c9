/*
 * sim_hlr.c - the simulator's HLR/MNP service. See sim_hlr.h.
 */
#include "sim_hlr.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

struct sim_hlr {
  json_t *ported;     /* phone -> {"operator","inn"} */
  json_t *roaming;    /* phone -> true */
  int down;           /* answer 503 to lookups */
  long lookups;
};

struct sim_hlr *sim_hlr_new(void) {
  struct sim_hlr *h = kk_xcalloc(1, sizeof *h);   /* freed by sim_hlr_free */
  h->ported = json_object();
  h->roaming = json_object();
  return h;
}

void sim_hlr_free(struct sim_hlr *h) {
  if (h == NULL) return;
  json_decref(h->ported);
  json_decref(h->roaming);
  free(h);
}

static char *dump(json_t *v) {
  char *s = json_dumps(v, JSON_COMPACT);
  json_decref(v);
  return s ? s : kk_xstrdup("{}");
}

static int error(unsigned code, const char *what, unsigned *status, char **out) {
  *status = code;
  *out = dump(json_pack("{s:{s:s}}", "error", "message", what));
  return 0;
}

static int config(struct sim_hlr *h, const char *body, size_t len, unsigned *status, char **out) {
  json_t *in = json_loadb(body ? body : "", len, 0, NULL);
  if (!json_is_object(in)) {
    json_decref(in);
    return error(400, "a JSON object: ported, roaming, down", status, out);
  }
  json_t *p = json_object_get(in, "ported"), *r = json_object_get(in, "roaming");
  if ((p && !json_is_object(p)) || (r && !json_is_array(r))) {
    json_decref(in);
    return error(400, "ported: {phone: {operator, inn}}, roaming: [phone]", status, out);
  }
  if (p) {
    json_object_clear(h->ported);
    json_object_update(h->ported, p);
  }
  if (r) {
    json_object_clear(h->roaming);
    size_t i;
    json_t *v;
    json_array_foreach(r, i, v) {
      if (json_is_string(v)) json_object_set_new(h->roaming, json_string_value(v), json_true());
    }
  }
  h->down = json_is_true(json_object_get(in, "down"));
  json_decref(in);
  *status = 200;
  *out = dump(json_pack("{s:i,s:i,s:b}", "ported", (int)json_object_size(h->ported), "roaming",
                        (int)json_object_size(h->roaming), "down", h->down));
  return 0;
}

static int lookup(struct sim_hlr *h, const char *phone, unsigned *status, char **out) {
  if (phone == NULL || *phone == '\0' || strlen(phone) > 15 ||
      strspn(phone, "0123456789") != strlen(phone))
    return error(400, "phone: E.164 digits", status, out);
  h->lookups++;
  if (h->down) return error(503, "the HLR is down", status, out);
  json_t *p = json_object_get(h->ported, phone);
  json_t *o = json_pack("{s:s,s:b,s:b}", "phone", phone, "ported", p != NULL, "roaming",
                        json_object_get(h->roaming, phone) != NULL);
  if (p) {
    json_t *op = json_object_get(p, "operator"), *inn = json_object_get(p, "inn");
    if (json_is_string(op)) json_object_set(o, "operator", op);
    if (json_is_string(inn)) json_object_set(o, "inn", inn);
  }
  *status = 200;
  *out = dump(o);
  return 0;
}

int sim_hlr_handle(struct sim_hlr *h, const char *method, const char *path, const char *phone,
                   const char *body, size_t len, unsigned *status, char **out) {
  int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
  if (strcmp(path, "/hlr") == 0 && get) return lookup(h, phone, status, out);
  if (strcmp(path, "/hlr/config") == 0 && post) return config(h, body, len, status, out);
  if (strcmp(path, "/hlr/stats") == 0 && get) {
    *status = 200;
    *out = dump(json_pack("{s:I}", "lookups", (json_int_t)h->lookups));
    return 0;
  }
  if (strncmp(path, "/hlr", 4) == 0 && (path[4] == '\0' || path[4] == '/'))
    return error(405, "no such method on this path", status, out);
  return KK_ENOENT;
}
