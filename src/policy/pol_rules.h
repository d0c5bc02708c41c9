/*
 * pol_rules.h - an account's rules as data: what each message class may do
 * (a table, not code paths), quiet hours, frequency caps, the prohibited-
 * content switches and own words, and whether its cascades may use foreign
 * messengers. Parsed from and shown as the policy document of
 * GET|PUT /v1/policy; the keys it does not know are kept as they came (the
 * stop-list and consent settings are another module's). Pure.
 */
#ifndef POL_RULES_H
#define POL_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "policy/pol_quiet.h"

#define POL_CLASSES 3            /* service, transactional, advertising */
#define POL_CAPS_MAX 4           /* caps per account */
#define POL_CAP_MAX_COUNT 100    /* a cap's max */
#define POL_CAP_RING_DEFAULT 4   /* send times kept a phone until the caps say more */
#define POL_CAP_RING_MAX (POL_CAP_MAX_COUNT + 1)   /* the max, and the one due */
#define POL_CAP_MAX_PER_MS (365LL * 24 * 3600 * 1000)
#define POL_OWN_WORDS_MAX 64
#define POL_OWN_WORD_LEN 64

/* The lane a class's SMS goes on (dispatch's lanes: stream for what a
   person waits for, bulk for the rest). */
enum pol_lane { POL_LANE_STREAM = 0, POL_LANE_BULK };

/* What a class may do: the one place that says it (pol_class_rule); the
   accept path, the stop-list, the consent check and the dispatcher's lane
   read it instead of testing the class's name. */
struct pol_class_rule {
  int consent;                   /* needs a current consent of the phone */
  int quiet;                     /* waits out the quiet hours */
  int caps;                      /* obeys the account's frequency caps for it */
  int content;                   /* the prohibited-content check applies */
  enum pol_lane lane;
  int fallthrough_quiet;         /* a cascade step falling through waits out quiet
                                    hours (but for urgent messages and codes) */
  int stop;                      /* obeys the stop-list */
  unsigned stop_allow;           /* the POL_ALLOW_* bit (pol_stop.h) through which the
                                    account's stop_list_allows lets it reach a phone
                                    stopped (not by a complaint); 0: never */
  int complaint_passes;          /* a complaint does not stop it */
  int due_check;                 /* the rules again when it comes due, even if it
                                    did not wait */
};

/* The rule of class index cls (0 service, 1 transactional, 2 advertising;
   out of range: service's). */
const struct pol_class_rule *pol_class_rule(int cls);
/* The index of a class named name ("service", ...); -1 when unknown. */
int pol_class_index(const char *name);
/* The same, service's (0) for a name unknown or NULL. */
int pol_class_or_service(const char *name);
/* The rule of the class named name (unknown or NULL: service's). */
const struct pol_class_rule *pol_class_rule_named(const char *name);

struct pol_cap {
  int cls;                       /* index in accept_classes */
  int max;                       /* messages in any window of per_ms */
  int64_t per_ms;
};

enum pol_cap_mode { POL_CAP_REFUSE = 0, POL_CAP_DEFER };

struct pol_rules {
  struct pol_class_rule cls[POL_CLASSES];
  struct pol_window quiet;       /* recipient-local; from == to: none */
  char default_tz[64];           /* the account's zone when the recipient's is unknown */
  struct pol_cap caps[POL_CAPS_MAX];
  int ncaps;
  enum pol_cap_mode cap_mode;
  unsigned content_on;           /* mask of 1u << POL_CAT_* */
  char own[POL_OWN_WORDS_MAX][POL_OWN_WORD_LEN];
  char own_norm[POL_OWN_WORDS_MAX][2 * POL_OWN_WORD_LEN];   /* as the check compares them */
  int nown;
  int no_foreign;                /* 584-FZ: skip Telegram, WhatsApp, Viber */
};

/* The rules of an account that has set none. */
void pol_rules_default(struct pol_rules *r);

/*
 * Parses a policy document (JSON text) over the defaults into *r. 0, or
 * KK_EINVAL with *field the key at fault and err a sentence.
 */
int pol_rules_parse(const char *json, struct pol_rules *r, const char **field, char *err,
                    size_t errlen);

/* The document of r merged into base (JSON text or NULL; its other keys
   kept), malloc'd (the caller frees). */
char *pol_rules_doc(const struct pol_rules *r, const char *base);

struct pol_content_hit;
/* The prohibited-content check of text (len bytes) under r: its
   categories on and its own words. 1 with *hit, else 0. */
int pol_rules_content(const struct pol_rules *r, const char *text, size_t len,
                      struct pol_content_hit *hit);

/* "7d", "12h", "30m", "90s" or seconds -> ms. 0 or KK_EINVAL. */
int pol_period_parse(const char *s, int64_t *ms);

#endif
