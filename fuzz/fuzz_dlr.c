/*
 * fuzz_dlr.c - fuzz target for the delivery receipt text parser. Every view
 * it returns must lie inside the input; the message id conversion runs on the
 * id it finds.
 */
#include <stddef.h>
#include <stdint.h>

#include "smpp/smpp_dlr.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

/* An empty view may point anywhere; a non-empty one must be inside the input. */
static void check_inside(struct smpp_str v, const uint8_t *data, size_t size) {
  if (v.len == 0) return;
  check(v.p >= data && v.len <= size && v.p - data <= (ptrdiff_t)(size - v.len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct smpp_dlr d;
  int rc = smpp_dlr_parse_text(data, size, &d);
  check(rc == 0 || rc < 0);
  check_inside(d.id, data, size);
  check_inside(d.submit_date, data, size);
  check_inside(d.done_date, data, size);
  check_inside(d.text, data, size);
  check(d.submit_date.len == 0 || d.submit_date.len == 10 || d.submit_date.len == 12);
  check(d.done_date.len == 0 || d.done_date.len == 10 || d.done_date.len == 12);
  check(d.state >= SMPP_STATE_UNKNOWN_NONE && d.state <= SMPP_STATE_REJECTED);
  check(d.sub >= -1 && d.dlvrd >= -1 && d.err >= -1);
  if (rc == 0) {
    check(d.id.len > 0 && d.state != SMPP_STATE_UNKNOWN_NONE);
    check(d.final == (d.state != SMPP_STATE_ENROUTE && d.state != SMPP_STATE_ACCEPTED));
    char alt[32];
    smpp_msgid_alt(d.id, alt, sizeof alt);
    smpp_state_name(d.state);
  }
  return 0;
}
