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
#define POL_CAP_MAX_COUNT 4      /* a cap's max; also the ring kept per phone */
#define POL_CAP_MAX_PER_MS (31LL * 24 * 3600 * 1000)
#define POL_OWN_WORDS_MAX 64
#define POL_OWN_WORD_LEN 64

/* What a class may do. */
struct pol_class_rule {
  int quiet;                     /* waits out the quiet hours */
  int content;                   /* the prohibited-content check applies */
  int fallthrough_quiet;         /* a cascade step falling through waits out quiet hours */
};

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

/* "7d", "12h", "30m", "90s" or seconds -> ms. 0 or KK_EINVAL. */
int pol_period_parse(const char *s, int64_t *ms);

#endif
