/*
 * fuzz_camp_spec.c - fuzz target for a campaign's settings: the input is
 * the body of PUT /v1/campaigns/{name}; what parses (camp_spec_parse) holds
 * one audience, 1 to CAMP_VARIANTS_MAX variants whose shares add up to 1,
 * a known class, a pace of a rate or a spread (not both) and an end after
 * its start; what does not carries a 422 with a code and a field. Each
 * recipient's variant is one of the variants.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "api/api_camp.h"
#include "api/api_int.h"
#include "core/kk_err.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  if (o == NULL) return 0;
  struct camp_spec sp;
  struct api_err e;
  memset(&e, 0, sizeof e);
  int rc = camp_spec_parse(o, &sp, &e);
  check(rc == 0 || rc == KK_EINVAL);
  if (rc != 0) {
    check(e.status == 422 && e.code != NULL && e.field != NULL);
    check(memchr(e.message, 0, sizeof e.message) != NULL);
    json_decref(o);
    return 0;
  }
  check((sp.list != NULL) + (sp.segment != NULL) + (sp.phones != NULL) == 1);
  if (sp.phones) check(json_array_size(sp.phones) >= 1 && json_array_size(sp.phones) <= CAMP_PHONES_MAX);
  check(sp.nvariants >= 1 && sp.nvariants <= CAMP_VARIANTS_MAX);
  double sum = 0;
  for (int i = 0; i < sp.nvariants; i++) {
    check(sp.variants[i].tmpl != NULL && sp.variants[i].tmpl[0] != '\0');
    check(sp.variants[i].share >= 0 && isfinite(sp.variants[i].share));
    sum += sp.variants[i].share;
  }
  check(fabs(sum - 1) < 1e-6);
  check(strcmp(sp.msg_class, "service") == 0 || strcmp(sp.msg_class, "transactional") == 0 ||
        strcmp(sp.msg_class, "advertising") == 0);
  check(!(sp.per_minute && sp.spread_ms));
  check(sp.per_minute >= 0 && sp.spread_ms >= 0);
  check(sp.end_at == 0 || sp.end_at > sp.start_at);
  check(sp.window.from_min >= 0 && sp.window.from_min < 24 * 60);
  check(sp.window.to_min >= 0 && sp.window.to_min < 24 * 60);
  for (int64_t seq = 1; seq <= 64; seq++) {
    int v = camp_variant_of(&sp, "fuzz", seq);
    check(v >= 0 && v < sp.nvariants);
  }
  json_decref(o);
  return 0;
}
