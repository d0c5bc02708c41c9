/*
 * fuzz_tmpl_doc.c - fuzz target for template bodies: the input is a body
 * for tmpl_parse; one that parses is rendered for every channel with a
 * value that holds placeholders itself. A render never fails but for a
 * missing variable, a text over its bound or a channel without text.
 */
#include <stdint.h>
#include <string.h>

#include "core/kk_err.h"
#include "template/tmpl_doc.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *doc = NULL;
  struct tmpl_err err;
  int rc = tmpl_parse((const char *)data, size, &doc, &err);
  check(rc == 0 || rc == KK_EINVAL || rc == KK_ETOOBIG);
  check((rc == 0) == (doc != NULL));
  check(memchr(err.msg, 0, sizeof err.msg) != NULL);
  if (rc != 0) return 0;
  json_t *vars = json_pack("{s:s, s:i}", "name", "{{code}}|}}", "code", 42);
  struct tmpl_vars v = {.vars = vars};
  for (int ch = 0; ch < TMPL_NCHAN; ch++) {
    json_t *out = NULL;
    rc = tmpl_render(doc, (enum tmpl_chan)ch, &v, &out, &err);
    check(rc == 0 || rc == KK_ENOENT || rc == KK_ETOOBIG || rc == KK_EINVAL);
    check((rc == 0) == (out != NULL));
    if (rc == 0 && json_object_get(out, "text"))
      check(json_string_length(json_object_get(out, "text")) <= TMPL_TEXT_MAX);
    json_decref(out);
  }
  json_decref(vars);
  json_decref(doc);
  return 0;
}
