/*
 * pol_stop.c - the stop-list's rule (pol_stop.h).
 */
#include "policy/pol_stop.h"

#include <string.h>

#include "policy/pol_rules.h"


static const char *const names[POL_STOP_NREASONS] = {
    NULL, "reply", "api", "complaint", "link", "import",
};

const char *pol_stop_reason_name(unsigned reason) {
  return reason < POL_STOP_NREASONS ? names[reason] : NULL;
}

unsigned pol_stop_reason_of(const char *name) {
  if (name == NULL) return POL_STOP_NONE;
  for (unsigned i = 1; i < POL_STOP_NREASONS; i++)
    if (strcmp(names[i], name) == 0) return i;
  return POL_STOP_NONE;
}

int pol_stop_refuses(unsigned reason, int msg_class, unsigned allow) {
  if (reason == POL_STOP_NONE || reason >= POL_STOP_NREASONS) return 0;
  const struct pol_class_rule *c = pol_class_rule(msg_class);
  if (!c->stop) return 0;
  if (reason == POL_STOP_COMPLAINT) return !c->complaint_passes;
  return !(allow & c->stop_allow);
}

const char *pol_stop_reply_name(enum pol_reply_kind k) {
  static const char *const kinds[] = {NULL, "stop", "start", "help"};
  return (unsigned)k < 4 ? kinds[k] : NULL;
}
