/*
 * pol_stop.c - the stop-list's rule (pol_stop.h).
 */
#include "policy/pol_stop.h"

#include <string.h>


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
  if (msg_class == 0) return !(allow & POL_ALLOW_SERVICE);
  if (msg_class == 1) return reason == POL_STOP_COMPLAINT || !(allow & POL_ALLOW_TRANSACTIONAL);
  return 1;
}

const char *pol_stop_reply_name(enum pol_reply_kind k) {
  static const char *const kinds[] = {NULL, "stop", "start", "help"};
  return (unsigned)k < 4 ? kinds[k] : NULL;
}
